"""Every forged token of issue 3 is a 401 problem+json at choice_service (``servicekit.testing`` matrix)."""

from __future__ import annotations

import uuid

import pytest

from servicekit.testing import assert_service_only, assert_unauthorized, forged_token_requests

pytestmark = pytest.mark.django_db

SOME_POLL = str(uuid.uuid4())
PROTECTED = [
    ("post", "/api/v1/choices/", {"poll": SOME_POLL, "text": "Forged?"}),
    ("post", "/api/v3/choices/", {"poll": SOME_POLL, "text": "Forged?"}),
]
PUBLIC = [("get", f"/api/v1/choices/?poll={SOME_POLL}", None), ("get", f"/api/v2/choices/?poll={SOME_POLL}", None)]


@pytest.mark.parametrize("attempt", forged_token_requests(protected=PROTECTED, public=PUBLIC), ids=str)
def test_forged_tokens_are_refused(client, attempt) -> None:
    assert_unauthorized(attempt.send(client), attempt.case)


def test_a_genuine_token_creates_a_choice(owner, draft_poll) -> None:
    # ``owner`` sends a real access token for the poll's owner.
    response = owner.post("/api/v1/choices/", {"poll": str(draft_poll.id), "text": "Real"}, format="json")
    assert response.status_code == 201, response.content


def test_internal_endpoints_need_the_service_credential(client) -> None:
    assert assert_service_only(client, f"/internal/choices/{uuid.uuid4()}/", callers=["votes"]).status_code == 404
