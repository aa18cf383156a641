"""Steps of features/owner.feature: an owner drafts a poll, adds choices, opens and closes it."""

from __future__ import annotations

import uuid

import pytest
from pytest_bdd import parsers, scenarios, then, when

from .helpers import bearer, minted_user, quoted

pytestmark = pytest.mark.stack

scenarios("owner.feature")


@when(parsers.parse('{name} drafts the poll "{question}"'))
def draft_poll(journey, name: str, question: str) -> None:
    # The question must be unique to the session: "among the open polls" searches by it.
    journey.owner = journey.users[name]
    response = journey.owner.call("POST", "/api/v2/polls/", {"question": f"{question} {uuid.uuid4().hex[:8]}"})
    assert response.status_code == 201, response.text
    journey.poll = response.json()


@then(parsers.parse("the poll is a draft owned by {name}"))
def draft_owned_by(journey, name: str) -> None:
    owner = journey.users[name]
    seen = owner.call("GET", f"/api/v2/polls/{journey.poll['id']}/")
    assert seen.status_code == 200, seen.text
    assert (seen.json()["status"], seen.json()["owner"]) == ("draft", owner.id), seen.text


@then("other people do not see the draft")
def draft_hidden(platform, gateway, journey) -> None:
    other = bearer(platform.token(minted_user()))
    assert gateway.get(f"/api/v2/polls/{journey.poll['id']}/", headers=other).status_code == 404
    listed = gateway.get("/api/v2/polls/", params={"search": journey.poll["question"]}, headers=other)
    assert listed.status_code == 200 and listed.json()["results"] == [], listed.text


@when(parsers.parse("{name} adds the choices {texts}"))
def add_choices(journey, name: str, texts: str) -> None:
    for position, text in enumerate(quoted(texts)):
        body = {"poll": journey.poll["id"], "text": text, "position": position}
        response = journey.users[name].call("POST", "/api/v2/choices/", body)
        assert response.status_code == 201, response.text
        journey.choices.append(response.json()["id"])


@then(parsers.parse("the poll offers {texts} in that order"))
def poll_offers(journey, texts: str) -> None:
    response = journey.owner.call("GET", "/api/v2/choices/", params={"poll": journey.poll["id"]})
    assert response.status_code == 200, response.text
    listed = sorted(response.json()["results"], key=lambda c: c["position"])
    assert [(c["id"], c["text"]) for c in listed] == list(zip(journey.choices, quoted(texts), strict=True))


@when(parsers.re(r"(?P<name>\w+) (?P<action>opens|closes) the poll"))
def open_or_close(journey, name: str, action: str) -> None:
    verb = {"opens": "open", "closes": "close"}[action]
    response = journey.users[name].call("POST", f"/api/v2/polls/{journey.poll['id']}/{verb}/")
    assert response.status_code == 200, response.text
    journey.poll = response.json()


@then("the poll is among the open polls")
def among_open_polls(platform, gateway, journey) -> None:
    anyone = bearer(platform.token(minted_user()))
    query = {"status": "open", "search": journey.poll["question"]}
    listed = gateway.get("/api/v2/polls/", params=query, headers=anyone)
    assert listed.status_code == 200, listed.text
    assert [p["id"] for p in listed.json()["results"]] == [journey.poll["id"]], listed.text
