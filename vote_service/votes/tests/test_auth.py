"""Every forged token of issue 3 is a 401 problem+json at vote_service (``servicekit.testing`` matrix)."""

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

SOME_POLL, SOME_CHOICE = str(uuid.uuid4()), str(uuid.uuid4())
PROTECTED = [
    ("get", "/api/v1/votes/", None),
    ("get", "/api/v3/votes/", None),
    ("post", "/api/v1/votes/", {"poll": SOME_POLL, "choice": SOME_CHOICE}),
    ("post", "/api/v2/votes/", {"poll": SOME_POLL, "choice": SOME_CHOICE}),
]
PUBLIC = [("get", f"/api/v1/results/{SOME_POLL}/", None)]
CASES = forged_token_names()


def _send(client, method, path, body, **headers):
    if body is None:
        return getattr(client, method)(path, **headers)
    return getattr(client, method)(path, body, content_type="application/json", **headers)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_forged_tokens_are_refused(client, case, method, path, body) -> None:
    assert_unauthorized(_send(client, method, path, body, **forged_token(case).client_kwargs()), case)


@pytest.mark.parametrize("case", [name for name in CASES if name != "no-token"])
@pytest.mark.parametrize(("method", "path", "body"), PUBLIC)
def test_forged_tokens_are_refused_on_public_reads(client, case, method, path, body) -> None:
    assert_unauthorized(_send(client, method, path, body, **forged_token(case).client_kwargs()), case)


@pytest.mark.parametrize("path", ["/api/v1/votes/", "/api/v3/votes/"])
def test_a_genuine_token_lists_the_callers_votes(client, path) -> None:
    response = client.get(path, **bearer(make_access_token(4711, "genuine")))
    assert response.status_code == 200, response.content


def test_internal_endpoints_need_the_service_credential(client) -> None:
    path = f"/internal/polls/{uuid.uuid4()}/votes/"
    for headers in (
        {},
        bearer(make_access_token(1, "alice", roles=("user", "operator"))),
        {"HTTP_AUTHORIZATION": "Service wrong-token"},
    ):
        response = client.get(path, **headers)
        assert response.status_code == 401, headers
        assert response["Content-Type"] == "application/problem+json"
    assert client.get(path, **service_credentials()).status_code in (200, 404)
