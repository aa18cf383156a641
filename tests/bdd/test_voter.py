"""Steps of features/voter.feature: a voter registers, finds an open poll, votes, changes the vote."""

from __future__ import annotations

import pytest
from pytest_bdd import parsers, scenarios, then, when

from scripts.loadgen import wait_for

pytestmark = pytest.mark.stack

scenarios("voter.feature")


@when(parsers.parse("{name} looks for open polls matching the poll's question"))
def search_open_polls(journey, name: str) -> None:
    query = {"status": "open", "search": journey.poll["question"]}
    journey.response = journey.users[name].call("GET", "/api/v2/polls/", params=query)


@then("the poll is among them")
def poll_is_listed(journey) -> None:
    assert journey.response.status_code == 200, journey.response.text
    found = [p for p in journey.response.json()["results"] if p["id"] == journey.poll["id"]]
    assert found and found[0]["status"] == "open", journey.response.text


@when(parsers.parse("{name} votes for the {ordinal} choice"))
def cast_vote(journey, name: str, ordinal: str) -> None:
    body = {"poll": journey.poll["id"], "choice": journey.choice(ordinal)}
    response = journey.users[name].call("POST", "/api/v2/votes/", body)
    assert response.status_code == 201, response.text
    journey.vote = response.json()
    assert journey.vote["voter"] == journey.users[name].id, response.text


@when(parsers.parse("{name} changes the vote to the {ordinal} choice"))
def change_vote(journey, name: str, ordinal: str) -> None:
    body = {"choice": journey.choice(ordinal)}
    response = journey.users[name].call("PATCH", f"/api/v2/votes/{journey.vote['id']}/", body)
    assert response.status_code == 200, response.text
    journey.vote = response.json()


@then(parsers.re(r"the results count (?P<first>\d+) votes? for the first choice and (?P<second>\d+) for the second"))
def results_count(gateway, journey, first: str, second: str) -> None:
    expected = {journey.choices[0]: int(first), journey.choices[1]: int(second)}

    def counted() -> dict | None:
        # Results are read anonymously, as anyone may; they follow the votes, so wait for them.
        body = gateway.get(f"/api/v2/results/{journey.poll['id']}/").json()
        counts = {c["choice"]: c["votes"] for c in body.get("choices", [])}
        return body if counts == expected and body["total"] == sum(expected.values()) else None

    wait_for(f"results {expected}", counted, timeout=20)


@then(parsers.parse("{name} has exactly one vote in the poll, for the {ordinal} choice"))
def one_vote(journey, name: str, ordinal: str) -> None:
    response = journey.users[name].call("GET", "/api/v2/votes/", params={"poll": journey.poll["id"]})
    assert response.status_code == 200, response.text
    votes = [(v["id"], v["choice"]) for v in response.json()["results"]]
    assert votes == [(journey.vote["id"], journey.choice(ordinal))], votes
