"""Caching of public reads: Cache-Control from the services (servicekit.caching) and the gateway's micro-cache.

Anonymous reads of results and polls are ``public, max-age=1`` and the gateway keeps them for that second
(``X-Cache-Status: HIT``); a closed poll's results are ``immutable`` for a day; an answer to a caller
with credentials is ``private, no-cache`` and never stored, so it cannot reach another caller.
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


def test_the_second_anonymous_read_is_a_hit(users) -> None:
    alice, _, anonymous = users
    poll_id, _ = open_poll(alice)
    first = eventually(lambda: anonymous_results(anonymous, poll_id))
    assert first.headers["Cache-Control"] == "public, max-age=1"
    assert {"Authorization", "Accept"} <= {v.strip() for v in first.headers["Vary"].split(",")}

    def hit() -> requests.Response | None:
        """a read straight after another is served by the gateway"""
        anonymous.call("GET", results_path(poll_id))
        again = anonymous.call("GET", results_path(poll_id))
        return again if again.headers.get("X-Cache-Status") == "HIT" else None

    again = eventually(hit, timeout=5)
    assert again.json() == first.json()
    assert again.headers["ETag"] == first.headers["ETag"]
    # Poll reads too, and each Accept is its own entry (v3 HAL is never served for JSON).
    eventually(lambda: anonymous.call("GET", f"/api/v2/polls/{poll_id}/").headers.get("X-Cache-Status") == "HIT")
    hal = anonymous.call("GET", f"/api/v3/polls/{poll_id}/", Accept="application/hal+json")
    assert hal.headers["Content-Type"].startswith("application/hal+json")


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
    poll_id, _ = open_poll(alice)
    first = eventually(lambda: anonymous_results(anonymous, poll_id))
    etag = first.headers["ETag"]
    for client in (anonymous, anonymous, alice):  # from the cache, again, and past it (credentials)
        unchanged = client.call("GET", results_path(poll_id), **{"If-None-Match": etag})
        assert unchanged.status_code == 304, (unchanged.status_code, unchanged.headers)
        assert unchanged.content == b""


def test_a_vote_shows_in_anonymous_results_within_about_a_second(users) -> None:
    alice, bob, anonymous = users
    poll_id, choices = open_poll(alice)
    assert eventually(lambda: anonymous_results(anonymous, poll_id)).json()["total"] == 0
    assert anonymous.call("GET", results_path(poll_id)).json()["total"] == 0  # now in the gateway's cache
    vote = bob.call("POST", "/api/v2/votes/", {"poll": poll_id, "choice": choices[0]})
    assert vote.status_code == 201, vote.text
    cast = time.monotonic()

    def counted() -> bool:
        """the anonymous results count Bob's vote"""
        return anonymous.call("GET", results_path(poll_id)).json()["total"] == 1

    eventually(counted, timeout=5)
    assert time.monotonic() - cast < 2.5  # max-age=1 at the gateway, plus a little


def test_closed_results_are_immutable(users) -> None:
    alice, bob, anonymous = users
    poll_id, choices = open_poll(alice)
    eventually(lambda: anonymous_results(anonymous, poll_id))
    assert bob.call("POST", "/api/v2/votes/", {"poll": poll_id, "choice": choices[1]}).status_code == 201
    closed = alice.call("POST", f"/api/v2/polls/{poll_id}/close/")
    assert closed.status_code == 200, closed.text

    def final() -> requests.Response | None:
        """the anonymous results are marked final"""
        response = anonymous.call("GET", results_path(poll_id))
        return response if response.headers["Cache-Control"] == "public, max-age=86400, immutable" else None

    response = eventually(final, timeout=5)
    assert response.json()["total"] == 1
    assert anonymous.call("GET", results_path(poll_id)).headers["X-Cache-Status"] == "HIT"
    # With credentials the same results stay private.
    assert bob.call("GET", results_path(poll_id)).headers["Cache-Control"] == "private, no-cache"
