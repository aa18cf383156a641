"""BDD journeys (pytest-bdd): the Gherkin in ``features/``, the steps in the ``test_*.py`` beside it.

Every scenario runs against the session's test stack (``tests/conftest.py``) through the gateway,
like a client. The steps are thin: people are ``helpers.ApiUser`` objects (they register and log in
over the API), setup that is not the point of a scenario uses ``scripts.loadgen.Platform`` (tokens
minted with the stack's key), and whatever travels by event is awaited with
``scripts.loadgen.wait_for`` (bounded, never a fixed sleep).

State shared by the steps of one scenario lives in the ``journey`` fixture. Steps used by more than
one feature are defined here; the others live in the feature's own module.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from pytest_bdd import given, parsers, then

from scripts.loadgen import Platform

from .helpers import ApiUser, Journey, bearer, minted_user, problem_type


@pytest.fixture
def journey() -> Journey:
    return Journey()


@pytest.fixture(scope="session")
def platform(stack: Any) -> Platform:
    return Platform(gateway_url=stack.gateway_url, run_dir=stack.run_dir)


@given(parsers.parse("{name} has registered and logged in"))
def registered_user(gateway: requests.Session, journey: Journey, name: str) -> None:
    journey.users[name] = ApiUser(gateway, name)


@given(parsers.parse("an open poll with {count:d} choices"))
def open_poll(platform: Platform, gateway: requests.Session, journey: Journey, count: int) -> None:
    # Who owns it is not the point of the scenarios that start here: the Platform's owner creates it.
    (poll,) = platform.create_polls(1, choices=count, prefix=f"Journey {uuid.uuid4().hex[:12]}")
    response = gateway.get(f"/api/v2/polls/{poll.id}/", headers=bearer(platform.token(platform.owner_id)))
    assert response.status_code == 200 and response.json()["status"] == "open", response.text
    journey.poll, journey.choices = response.json(), poll.choices


@then(parsers.re(r"the poll is (?P<status>draft|open|closed) for API clients"))
def poll_status_for_clients(platform: Platform, gateway: requests.Session, journey: Journey, status: str) -> None:
    response = gateway.get(f"/api/v2/polls/{journey.poll['id']}/", headers=bearer(platform.token(minted_user())))
    assert response.status_code == 200 and response.json()["status"] == status, response.text


@then(parsers.parse('a new vote in the poll is refused as "{problem}"'))
def new_vote_refused(platform: Platform, gateway: requests.Session, journey: Journey, problem: str) -> None:
    # No waiting: vote_service seals the poll before the close commits (the close gate), so a vote
    # sent once the close has answered is refused at once. A fresh voter, so that "already voted"
    # cannot be the reason.
    body = {"poll": journey.poll["id"], "choice": journey.choices[0]}
    refused = gateway.post("/api/v2/votes/", json=body, headers=bearer(platform.token(minted_user())))
    assert refused.status_code == 422 and problem_type(refused) == problem, refused.text
