"""Every forged token of issue 3 is a 401 problem+json at choice_service (``servicekit.testing`` matrix)."""

from __future__ import annotations

import uuid

import pytest

from choices.tests.conftest import OWNER_ID
from servicekit.testing import (
    assert_unauthorized,
    bearer,
    forged_token,
    forged_token_names,
    make_access_token,
    service_credentials,
)

pytestmark = pytest.mark.django_db

SOME_POLL = str(uuid.uuid4())
PROTECTED = [
    ("post", "/api/v1/choices/", {"poll": SOME_POLL, "text": "Forged?"}),
    ("post", "/api/v3/choices/", {"poll": SOME_POLL, "text": "Forged?"}),
]
PUBLIC = [("get", f"/api/v1/choices/?poll={SOME_POLL}", None), ("get", f"/api/v2/choices/?poll={SOME_POLL}", None)]
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


def test_a_genuine_token_creates_a_choice(client, draft_poll) -> None:
    token = make_access_token(OWNER_ID, f"user{OWNER_ID}")
    response = _send(client, "post", "/api/v1/choices/", {"poll": str(draft_poll.id), "text": "Real"}, **bearer(token))
    assert response.status_code == 201, response.content


def test_internal_endpoints_need_the_service_credential(client) -> None:
    path = f"/internal/choices/{uuid.uuid4()}/"
    for headers in (
        {},
        bearer(make_access_token(OWNER_ID, "owner", roles=("user", "operator"))),
        {"HTTP_AUTHORIZATION": "Service wrong-token"},
    ):
        response = client.get(path, **headers)
        assert response.status_code == 401, headers
        assert response["Content-Type"] == "application/problem+json"
    assert client.get(path, **service_credentials()).status_code == 404
