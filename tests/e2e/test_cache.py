"""Caching of public reads: Cache-Control from the services (servicekit.caching) and the gateway's micro-cache.

Anonymous reads of polls are ``public, max-age=1`` and the gateway keeps them for that second
(``X-Cache-Status: HIT``); an open poll's results are ``public, no-cache`` (never kept at the edge: a vote
shows in the next read); a closed poll's results are ``immutable`` for a day; an answer to a caller with
credentials is ``private, no-cache`` and never stored, so it cannot reach another caller.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.stack

PASSWORD = "cache test password 42"


def eventually(check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"not reached within {timeout} s: {check.__doc__ or check}"
        time.sleep(interval)


class Client:
    """A registered user (or, with ``anonymous()``, nobody) talking to the gateway on its own connection pool."""

    def __init__(self, base_url: str, token: str | None = None):
        self.base_url = base_url
        self.session = requests.Session()
        self.token = token

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> requests.Response:
        all_headers = {"Accept": "application/json", **headers}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        return self.session.request(method, f"{self.base_url}{path}", json=body, headers=all_headers, timeout=15)


def register(base_url: str, name: str) -> Client:
    username = f"{name}{uuid.uuid4().hex[:10]}"
    anonymous = Client(base_url)
    assert anonymous.call("POST", "/api/v1/auth/register/", {"username": username, "password": PASSWORD}).ok
    tokens = anonymous.call("POST", "/api/v1/auth/token/", {"username": username, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return Client(base_url, tokens.json()["access"])


@pytest.fixture
def users(stack) -> tuple[Client, Client, Client]:
    """(alice, bob, anonymous)."""
    return register(stack.gateway_url, "alice"), register(stack.gateway_url, "bob"), Client(stack.gateway_url)


def open_poll(owner: Client) -> tuple[str, list[str]]:
    poll = owner.call("POST", "/api/v2/polls/", {"question": "Cached?", "description": "edge"}).json()
    choices = [
        owner.call("POST", "/api/v2/choices/", {"poll": poll["id"], "text": text, "position": n}).json()["id"]
        for n, text in enumerate(("yes", "no"))
    ]
    opened = owner.call("POST", f"/api/v2/polls/{poll['id']}/open/")
    assert opened.status_code == 200, opened.text
    return poll["id"], choices


def results_path(poll_id: str) -> str:
    return f"/api/v2/results/{poll_id}/"


def anonymous_results(anonymous: Client, poll_id: str) -> requests.Response | None:
    """The anonymous results once vote_service knows the poll (it may still be hearing of it)."""
    response = anonymous.call("GET", results_path(poll_id))
    return response if response.status_code == 200 else None


def test_the_second_anonymous_poll_read_is_a_hit(users) -> None:
    alice, _, anonymous = users
    poll_id, _ = open_poll(alice)
    path = f"/api/v2/polls/{poll_id}/"
    first = anonymous.call("GET", path)
    assert first.status_code == 200, first.text
    assert first.headers["Cache-Control"] == "public, max-age=1"
    assert {"Authorization", "Accept"} <= {v.strip() for v in first.headers["Vary"].split(",")}

    def hit() -> requests.Response | None:
        """a read straight after another is served by the gateway"""
        anonymous.call("GET", path)
        again = anonymous.call("GET", path)
        return again if again.headers.get("X-Cache-Status") == "HIT" else None

    again = eventually(hit, timeout=5)
    assert again.json() == first.json()
    assert again.headers["ETag"] == first.headers["ETag"]
    # Each Accept is its own entry: v3 HAL is never served for JSON, nor JSON for HAL.
    hal = anonymous.call("GET", f"/api/v3/polls/{poll_id}/", Accept="application/hal+json")
    assert hal.headers["Content-Type"].startswith("application/hal+json")
    assert anonymous.call("GET", path).headers["Content-Type"].startswith("application/json")


def test_an_authenticated_answer_is_never_served_to_anyone_else(users) -> None:
    alice, bob, anonymous = users
    draft = alice.call("POST", "/api/v2/polls/", {"question": "Mine alone", "description": "draft"}).json()
    path = f"/api/v3/polls/{draft['id']}/"
    for _ in range(3):
        own = alice.call("GET", path, Accept="application/hal+json")
        assert own.status_code == 200, own.text
        assert own.headers["Cache-Control"] == "private, no-cache"
        assert "X-Cache-Status" not in own.headers  # proxied past the cache (@polls_direct)
    assert bob.call("GET", path, Accept="application/hal+json").status_code == 404
    assert anonymous.call("GET", path, Accept="application/hal+json").status_code == 404
    # Lists: the anonymous (cacheable) list never carries the draft; Alice's own list always does.
    listing = "/api/v2/polls/?status=draft"
    assert draft["id"] not in {p["id"] for p in anonymous.call("GET", listing).json()["results"]}
    assert anonymous.call("GET", listing).headers.get("X-Cache-Status") in ("HIT", "MISS", "EXPIRED", "UPDATING")
    mine = alice.call("GET", listing)
    assert draft["id"] in {p["id"] for p in mine.json()["results"]}
    assert "X-Cache-Status" not in mine.headers
    # A session cookie counts as credentials too.
    cookie = anonymous.call("GET", listing, Cookie="sessionid=not-a-real-session")
    assert "X-Cache-Status" not in cookie.headers


def test_if_none_match_answers_304(users) -> None:
    alice, _, anonymous = users
    poll_id, choices = open_poll(alice)

    def complete() -> requests.Response | None:
        """vote_service lists both choices (until then each choice event changes the results, and their ETag)"""
        response = anonymous_results(anonymous, poll_id)
        return response if response and len(response.json()["choices"]) == len(choices) else None

    etag = eventually(complete).headers["ETag"]
    # Open results, anonymous and with credentials: past the cache, vote_service answers the revalidation.
    for client in (anonymous, alice):
        unchanged = client.call("GET", results_path(poll_id), **{"If-None-Match": etag})
        assert unchanged.status_code == 304, (unchanged.status_code, unchanged.headers)
        assert unchanged.content == b""
    poll_path = f"/api/v2/polls/{poll_id}/"
    poll_etag = anonymous.call("GET", poll_path).headers["ETag"]

    def revalidated() -> requests.Response | None:
        """an anonymous poll revalidation is answered 304 (by the gateway once it holds the poll)"""
        response = anonymous.call("GET", poll_path, **{"If-None-Match": poll_etag})
        return response if response.status_code == 304 else None

    assert eventually(revalidated, timeout=5).content == b""


def test_an_open_polls_results_count_a_vote_in_the_next_anonymous_read(users) -> None:
    alice, bob, anonymous = users
    poll_id, choices = open_poll(alice)
    first = eventually(lambda: anonymous_results(anonymous, poll_id))
    assert first.json()["total"] == 0
    assert first.headers["Cache-Control"] == "public, no-cache"
    for _ in range(3):  # read after read: never kept at the edge
        again = anonymous.call("GET", results_path(poll_id))
        assert again.headers.get("X-Cache-Status") != "HIT", again.headers
    for expected in (1, 2):
        voter = bob if expected == 1 else alice
        vote = voter.call("POST", "/api/v2/votes/", {"poll": poll_id, "choice": choices[0]})
        assert vote.status_code == 201, vote.text
        # The very next read counts it (the vote is in vote_service's results when its 201 is sent).
        assert anonymous.call("GET", results_path(poll_id)).json()["total"] == expected


def test_closed_results_are_immutable(users) -> None:
    alice, bob, anonymous = users
    poll_id, choices = open_poll(alice)
    eventually(lambda: anonymous_results(anonymous, poll_id))
    assert bob.call("POST", "/api/v2/votes/", {"poll": poll_id, "choice": choices[1]}).status_code == 201
    closed = alice.call("POST", f"/api/v2/polls/{poll_id}/close/")
    assert closed.status_code == 200, closed.text

    # The close sealed the poll in vote_service before it answered (the gate): the next read is final.
    response = anonymous.call("GET", results_path(poll_id))
    assert response.headers["Cache-Control"] == "public, max-age=86400, immutable", response.headers
    assert response.json()["total"] == 1
    assert anonymous.call("GET", results_path(poll_id)).headers["X-Cache-Status"] == "HIT"
    # With credentials the same results stay private.
    assert bob.call("GET", results_path(poll_id)).headers["Cache-Control"] == "private, no-cache"
