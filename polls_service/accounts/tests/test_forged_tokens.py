"""Every forged token of issue 3 is a 401 problem+json at polls_service; real tokens pass.

The matrix is ``servicekit.testing.forged_token_matrix`` -- the same one the choice and vote suites
and the end-to-end test through the gateway send.
"""

from __future__ import annotations

import uuid

import pytest

from servicekit.testing import (
    assert_service_only,
    assert_unauthorized,
    bearer,
    forged_token_requests,
    make_access_token,
    send,
)

pytestmark = pytest.mark.django_db

# Endpoints that need a user: (method, path, JSON body).
PROTECTED = [
    ("get", "/api/v1/auth/me/", None),
    ("get", "/api/v3/auth/me/", None),
    ("post", "/api/v1/polls/", {"question": "Is this token forged?"}),
    ("post", "/api/v2/polls/", {"question": "Is this token forged?"}),
]
# Anonymous reads are allowed here, but a bad token is still refused rather than ignored.
PUBLIC = [("get", "/api/v1/polls/", None), ("get", "/api/v3/", None)]


@pytest.mark.parametrize("attempt", forged_token_requests(protected=PROTECTED, public=PUBLIC), ids=str)
def test_forged_tokens_are_refused(client, attempt) -> None:
    assert_unauthorized(attempt.send(client), attempt.case)


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED + PUBLIC)
def test_a_genuine_token_passes(client, method, path, body) -> None:
    response = send(client, method, path, body, **bearer(make_access_token(31337, "genuine")))
    assert 200 <= response.status_code < 300, (path, response.status_code, response.content[:300])


def test_a_genuine_token_can_also_use_lowercase_scheme(client) -> None:
    token = make_access_token(31337, "genuine")
    assert client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"bearer {token}").status_code == 200


def test_unknown_roles_in_a_token_grant_nothing(client) -> None:
    token = make_access_token(5, "eve", roles=("user", "admin", "superuser"))
    assert client.get("/api/v1/auth/me/", **bearer(token)).json()["roles"] == ["user"]


def test_internal_endpoint_needs_the_service_credential(client) -> None:
    response = assert_service_only(client, f"/internal/polls/{uuid.uuid4()}/", callers=["choices", "votes"])
    assert response.status_code == 404  # authenticated; no such poll
