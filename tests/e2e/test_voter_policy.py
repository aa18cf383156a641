"""Attribute-based access through the gateway: a poll's owner restricts who may vote while drafting;
vote_service decides from the voter's token alone, and v3's ``vote`` link agrees with it."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from scripts.loadgen import Platform
from servicekit.testing import make_access_token

pytestmark = pytest.mark.stack

DAY = 86_400


@pytest.fixture(scope="module")
def platform(stack) -> Platform:
    return Platform(gateway_url=stack.gateway_url, run_dir=stack.run_dir, owner_id=940_001)


def call(platform: Platform, method: str, path: str, token: str, body: dict | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    return requests.request(method, platform.gateway_url + path, json=body, headers=headers, timeout=15)


def open_poll_with(platform: Platform, policy: dict) -> tuple[str, str]:
    """An open poll of the owner with two choices and ``policy``; its id and a choice id."""
    owner = platform.token(platform.owner_id)
    created = call(
        platform, "POST", "/api/v2/polls/", owner, {"question": f"Who votes? {uuid.uuid4()}", "voter_policy": policy}
    )
    assert created.status_code == 201 and created.json()["voter_policy"] == policy, created.text
    poll = created.json()["id"]
    choices = [call(platform, "POST", "/api/v1/choices/", owner, {"poll": poll, "text": t}).json()["id"] for t in "AB"]
    assert call(platform, "POST", f"/api/v1/polls/{poll}/open/", owner).status_code == 200
    return poll, choices[0]


def vote(platform: Platform, token: str, poll: str, choice: str) -> requests.Response:
    deadline = time.monotonic() + 10
    while True:  # right after the open, vote_service may still be learning the poll (503 + Retry-After)
        response = call(platform, "POST", "/api/v1/votes/", token, {"poll": poll, "choice": choice})
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def vote_link(platform: Platform, token: str, poll: str) -> bool:
    return "vote" in call(platform, "GET", f"/api/v3/polls/{poll}/", token).json()["_links"]


def test_a_role_rule_admits_operators_only(platform) -> None:
    poll, choice = open_poll_with(platform, {"roles": ["operator"]})
    user, operator = platform.token(940_002), platform.token(940_003, roles=("user", "operator"))
    assert not vote_link(platform, user, poll) and vote_link(platform, operator, poll)
    refused = vote(platform, user, poll, choice)
    assert refused.status_code == 403, refused.text
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("/voter-not-admitted")
    assert vote(platform, operator, poll, choice).status_code == 201


def test_an_account_age_rule_reads_the_age_polls_service_puts_in_the_token(platform) -> None:
    poll, choice = open_poll_with(platform, {"min_account_age_days": 1})
    credentials = {"username": f"newcomer-{uuid.uuid4().hex[:8]}", "password": f"{uuid.uuid4()} new"}
    assert (
        requests.post(f"{platform.gateway_url}/api/v1/auth/register/", json=credentials, timeout=15).status_code == 201
    )
    login = requests.post(f"{platform.gateway_url}/api/v1/auth/token/", json=credentials, timeout=15)
    newcomer = login.json()["access"]
    assert not vote_link(platform, newcomer, poll)
    assert "1 days old" in vote(platform, newcomer, poll, choice).json()["detail"]
    # A token of the same key for an account created two days ago is admitted.
    seasoned = make_access_token(
        940_004, "seasoned", private_key=platform.key, joined=int(time.time() - 2 * DAY), exp=int(time.time()) + 300
    )
    assert vote_link(platform, seasoned, poll)
    assert vote(platform, seasoned, poll, choice).status_code == 201


def test_the_policy_is_fixed_once_the_poll_is_open(platform) -> None:
    poll, _ = open_poll_with(platform, {"roles": ["operator"]})
    owner = platform.token(platform.owner_id)
    assert call(platform, "PATCH", f"/api/v2/polls/{poll}/", owner, {"voter_policy": None}).status_code == 409
