"""Service identity against the running stack: each service signs its internal calls with its own key.

A credential of choice_service (its key, or a token it minted) reaches only what choice_service has
business with: the poll read on polls_service and the ledger on vote_service. It cannot seal a poll on
vote_service, read choices as vote_service does, speak for another service, or be replayed at a service
it was not minted for. The static shared token of before is gone.
"""

from __future__ import annotations

import time

import pytest
import requests

from scripts.loadgen import Platform
from servicekit import jwks
from servicekit.service_tokens import mint

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def platform(stack) -> Platform:
    return Platform(gateway_url=stack.gateway_url, run_dir=stack.run_dir, owner_id=920_001)


@pytest.fixture(scope="module")
def poll(platform):
    (created,) = platform.create_polls(1, choices=2, prefix="Service identity")
    return created


def call(stack, service: str, method: str, path: str, token: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Service {token}", "Accept": "application/json"}
    return requests.request(method, stack.service_url(service) + path, headers=headers, timeout=15, **kwargs)


def key_of(stack, service: str):
    return jwks.load_private_key((stack.run_dir / "secrets" / "service_keys" / f"{service}.pem").read_text())


def test_a_service_reaches_what_it_has_business_with(stack, platform, poll) -> None:
    read = call(stack, "polls", "GET", f"/internal/polls/{poll.id}/", platform.service_token("choices", "polls"))
    assert read.status_code == 200 and read.json()["id"] == poll.id
    ledger = call(
        stack, "votes", "GET", f"/internal/polls/{poll.id}/votes/", platform.service_token("choices", "votes")
    )
    assert ledger.status_code == 200, ledger.text


def test_a_stolen_choice_service_credential_cannot_do_what_choice_service_does_not(stack, platform, poll) -> None:
    seal = {"version": 99, "owner_id": 920_001, "status": "closed"}
    as_choices = platform.service_token("choices", "votes")
    refused = call(stack, "votes", "PUT", f"/internal/polls/{poll.id}/state/", as_choices, json=seal)
    assert refused.status_code == 403, refused.text
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert refused.json()["detail"] == "The choices service may not call this endpoint."
    # Nor can it read choices the way vote_service does, on choice_service itself.
    own = call(
        stack, "choices", "GET", f"/internal/polls/{poll.id}/choices/", platform.service_token("choices", "choices")
    )
    assert own.status_code == 403, own.text
    # The poll is still open: the refused seal changed nothing.
    votes = platform.token(920_002)
    cast = requests.post(
        f"{stack.gateway_url}/api/v1/votes/",
        json={"poll": poll.id, "choice": poll.choices[0]},
        headers={"Authorization": f"Bearer {votes}"},
        timeout=15,
    )
    assert cast.status_code == 201, cast.text


@pytest.mark.parametrize(
    "case",
    [
        "minted for vote_service",
        "naming polls_service",
        "expired",
        "long-lived",
        "an unknown key",
        "the old static token",
    ],
)
def test_a_credential_that_is_not_for_this_service_or_not_from_its_caller_is_401(stack, poll, case) -> None:
    choices = key_of(stack, "choices")
    token = {
        "minted for vote_service": lambda: mint(caller="choices", audience="votes", private_key=choices),
        "naming polls_service": lambda: mint(caller="polls", audience="polls", private_key=choices),
        "expired": lambda: mint(caller="choices", audience="polls", private_key=choices, now=time.time() - 600),
        "long-lived": lambda: mint(caller="choices", audience="polls", private_key=choices, lifetime=86_400),
        "an unknown key": lambda: mint(caller="choices", audience="polls", private_key=jwks.generate_private_key()),
        "the old static token": lambda: "x" * 43,
    }[case]()
    response = call(stack, "polls", "GET", f"/internal/polls/{poll.id}/", token)
    assert response.status_code == 401, (case, response.text)
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.headers["WWW-Authenticate"].startswith("Service")
