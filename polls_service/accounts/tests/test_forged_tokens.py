"""Every forged token of issue 3 is a 401 problem+json at polls_service; real tokens pass.

The matrix is ``servicekit.testing.forged_token_matrix`` -- the same one the choice and vote suites
and the end-to-end test through the gateway send.
"""

from __future__ import annotations

import uuid

import pytest

from servicekit.testing import (
    assert_unauthorized,
    bearer,
    forged_token,
    forged_token_names,
    make_access_token,
    service_credentials,
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
CASES = forged_token_names()


def _send(client, method, path, body, **headers):
    if body is None:
        return getattr(client, method)(path, **headers)
    return getattr(client, method)(path, body, content_type="application/json", **headers)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_forged_tokens_are_refused(client, case, method, path, body) -> None:
    response = _send(client, method, path, body, **forged_token(case).client_kwargs())
    assert_unauthorized(response, case)


@pytest.mark.parametrize("case", [name for name in CASES if name != "no-token"])
@pytest.mark.parametrize(("method", "path", "body"), PUBLIC)
def test_forged_tokens_are_refused_on_public_reads(client, case, method, path, body) -> None:
    assert_unauthorized(_send(client, method, path, body, **forged_token(case).client_kwargs()), case)


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED + PUBLIC)
def test_a_genuine_token_passes(client, method, path, body) -> None:
    response = _send(client, method, path, body, **bearer(make_access_token(31337, "genuine")))
    assert 200 <= response.status_code < 300, (path, response.status_code, response.content[:300])


def test_a_genuine_token_can_also_use_lowercase_scheme(client) -> None:
    token = make_access_token(31337, "genuine")
    assert client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"bearer {token}").status_code == 200


def test_unknown_roles_in_a_token_grant_nothing(client) -> None:
    token = make_access_token(5, "eve", roles=("user", "admin", "superuser"))
    assert client.get("/api/v1/auth/me/", **bearer(token)).json()["roles"] == ["user"]


def test_internal_endpoint_needs_the_service_credential(client) -> None:
    path = f"/internal/polls/{uuid.uuid4()}/"
    for headers in (
        {},
        bearer(make_access_token(1, "alice", roles=("user", "operator"))),
        {"HTTP_AUTHORIZATION": "Service wrong-token"},
        {"HTTP_AUTHORIZATION": "Service "},
    ):
        response = client.get(path, **headers)
        assert response.status_code == 401, headers
        assert response["Content-Type"] == "application/problem+json"
    assert client.get(path, **service_credentials()).status_code == 404  # authenticated; no such poll
