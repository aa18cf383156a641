"""The README walk-through, through the gateway, in every API version.

Two users register; Alice creates a poll with three choices and opens it; Bob votes; the results
count it; Alice closes the poll; a third user's vote is refused. The services agree through events,
so the steps that depend on another service having heard an event wait for it (bounded), the way a
client would retry.

v3 is driven by hypermedia alone: every URL after ``/api/v3/`` comes from a ``_links`` entry.
Every request goes over HTTPS (``https_gateway``: TLS 1.3, verified against the dev CA only).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.stack

PASSWORD = "walk-through password 42"
HAL = "application/hal+json"


@pytest.fixture
def gateway(https_gateway: Any) -> Any:
    """The walk-throughs go over HTTPS (TLS 1.3, trusting the dev CA only), as a client of the platform would."""
    return https_gateway


def eventually(check: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.2) -> Any:
    """``check()``'s first truthy result; fail after ``timeout`` seconds (events are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s: {check.__doc__ or check}")
        time.sleep(interval)


class User:
    """A registered, logged-in user talking to the gateway in one API version."""

    def __init__(self, gateway: Any, version: str, name: str):
        self.gateway = gateway
        self.version = version
        self.username = f"{name}{uuid.uuid4().hex[:10]}"
        self.accept = HAL if version == "v3" else "application/json"
        created = self.call("POST", f"/api/{version}/auth/register/", {"username": self.username, "password": PASSWORD})
        assert created.status_code == 201, created.text
        tokens = self.call("POST", f"/api/{version}/auth/token/", {"username": self.username, "password": PASSWORD})
        assert tokens.status_code == 200, tokens.text
        self.access = tokens.json()["access"]
        self.id = self.call("GET", f"/api/{version}/auth/me/").json()["id"]

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        all_headers = {"Accept": self.accept, **headers}
        if getattr(self, "access", None):
            all_headers["Authorization"] = f"Bearer {self.access}"
        return self.gateway.request(method, path, json=body, headers=all_headers)


def problem_type(response: Any) -> str:
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.text
    return response.json()["type"].rsplit("/", 1)[-1]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_walkthrough(gateway: Any, version: str) -> None:
    api = f"/api/{version}"
    alice, bob, carol = (User(gateway, version, n) for n in ("alice", "bob", "carol"))

    created = alice.call("POST", f"{api}/polls/", {"question": "Where shall we eat?", "description": "Friday"})
    assert created.status_code == 201, created.text
    poll = created.json()
    assert (poll["status"], poll["owner"]) == ("draft", alice.id)
    poll_url = f"{api}/polls/{poll['id']}/"
    if version == "v1":
        assert 'rel="successor-version"' in created.headers["Link"] and created.headers["Deprecation"]

    choices = []
    for position, text in enumerate(("Pizza", "Sushi", "Tacos")):
        response = alice.call("POST", f"{api}/choices/", {"poll": poll["id"], "text": text, "position": position})
        assert response.status_code == 201, response.text
        choices.append(response.json())
    refused = bob.call("POST", f"{api}/choices/", {"poll": poll["id"], "text": "Not yours"})
    assert refused.status_code in (403, 404), refused.text

    opened = alice.call("POST", f"{poll_url}open/")
    assert opened.status_code == 200, opened.text
    assert opened.json()["status"] == "open"
    assert bob.call("GET", poll_url).json()["status"] == "open"

    vote = bob.call("POST", f"{api}/votes/", {"poll": poll["id"], "choice": choices[1]["id"]})
    assert vote.status_code == 201, vote.text
    assert vote.json()["voter"] == bob.id
    again = bob.call("POST", f"{api}/votes/", {"poll": poll["id"], "choice": choices[0]["id"]})
    assert again.status_code == 409 and problem_type(again) == "already-voted"
    assert [v["id"] for v in bob.call("GET", f"{api}/votes/").json()["results"]] == [vote.json()["id"]]

    def counted() -> Any:
        """results count Bob's vote"""
        body = carol.call("GET", f"{api}/results/{poll['id']}/").json()
        return body if body.get("total") == 1 else None

    results = eventually(counted)
    votes = {c["choice"]: c["votes"] for c in results["choices"]}
    assert votes == {choices[0]["id"]: 0, choices[1]["id"]: 1, choices[2]["id"]: 0}

    closed = alice.call("POST", f"{poll_url}close/")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    _wait_until_votes_hears_closed(bob, vote.json()["id"])
    late = carol.call("POST", f"{api}/votes/", {"poll": poll["id"], "choice": choices[0]["id"]})
    assert late.status_code == 422 and problem_type(late) == "poll-not-open", late.text
    assert carol.call("GET", f"{api}/results/{poll['id']}/").json()["total"] == 1


def _wait_until_votes_hears_closed(voter: User, vote_id: str) -> None:
    """The vote service learns about the close by event: its v3 vote stops offering retract/change."""

    def settled() -> bool:
        """vote_service has the poll as closed"""
        body = voter.gateway.get(
            f"/api/v3/votes/{vote_id}/", headers={"Authorization": f"Bearer {voter.access}", "Accept": HAL}
        ).json()
        return "retract" not in body["_links"] and "change" not in body["_links"]

    eventually(settled)


def test_walkthrough_v3_by_links_only(gateway: Any) -> None:
    alice, bob, carol = (User(gateway, "v3", n) for n in ("alice", "bob", "carol"))
    root = alice.call("GET", "/api/v3/")
    assert root.status_code == 200 and root.headers["Content-Type"] == HAL
    entry = root.json()["_links"]
    assert {"polls", "choices", "votes", "results", "register", "token", "me", "docs"} <= set(entry)

    created = alice.call(entry["create_poll"]["method"], entry["create_poll"]["href"], {"question": "Tea or coffee?"})
    assert created.status_code == 201 and created.headers["Content-Type"] == HAL, created.text
    poll = created.json()
    links = poll["_links"]
    assert {"self", "choices", "results", "edit", "delete", "open", "add_choice"} <= set(links)
    assert "vote" not in links

    choices = []
    for text in ("Tea", "Coffee"):
        add = links["add_choice"]
        response = alice.call(add["method"], add["href"], {"poll": poll["id"], "text": text})
        assert response.status_code == 201, response.text
        choice = response.json()
        assert choice["_links"]["poll"]["href"] == links["self"]["href"]
        choices.append(choice)
    listed = alice.call("GET", links["choices"]["href"]).json()
    assert sorted(c["text"] for c in listed["_embedded"]["choices"]) == ["Coffee", "Tea"]

    opened = alice.call(links["open"]["method"], links["open"]["href"])
    assert opened.status_code == 200, opened.text
    assert "close" in opened.json()["_links"] and "open" not in opened.json()["_links"]

    bobs_view = bob.call("GET", links["self"]["href"]).json()["_links"]
    assert {"vote"} <= set(bobs_view) and not {"edit", "open", "close", "delete"} & set(bobs_view)
    vote_link = bobs_view["vote"]
    vote = bob.call(vote_link["method"], vote_link["href"], {"poll": poll["id"], "choice": choices[0]["id"]})
    assert vote.status_code == 201, vote.text
    vote_links = vote.json()["_links"]
    assert vote_links["poll"]["href"] == links["self"]["href"]
    assert {"self", "poll", "choice", "change", "retract"} <= set(vote_links)

    def vote_link_gone() -> bool:
        """polls_service heard vote.cast: Bob is no longer offered `vote`"""
        return "vote" not in bob.call("GET", links["self"]["href"]).json()["_links"]

    eventually(vote_link_gone)

    def counted() -> Any:
        """results count Bob's vote"""
        body = carol.call("GET", links["results"]["href"]).json()
        return body if body.get("total") == 1 else None

    results = eventually(counted)
    assert {c["choice"]: c["votes"] for c in results["choices"]} == {choices[0]["id"]: 1, choices[1]["id"]: 0}
    assert results["_links"]["poll"]["href"] == links["self"]["href"]

    close = opened.json()["_links"]["close"]
    closed = alice.call(close["method"], close["href"])
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert not {"vote", "close", "open", "edit"} & set(carol.call("GET", links["self"]["href"]).json()["_links"])
    _wait_until_votes_hears_closed(bob, vote.json()["id"])
    late = carol.call("POST", vote_link["href"], {"poll": poll["id"], "choice": choices[1]["id"]})
    assert late.status_code == 422 and problem_type(late) == "poll-not-open", late.text
