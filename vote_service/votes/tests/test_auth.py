"""Every forged token of issue 3 is a 401 problem+json at vote_service (``servicekit.testing`` matrix)."""

from __future__ import annotations

import uuid

import pytest

from servicekit.testing import (
    assert_service_only,
    assert_unauthorized,
    bearer,
    forged_token_requests,
    make_access_token,
    make_client_token,
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


@pytest.mark.parametrize("attempt", forged_token_requests(protected=PROTECTED, public=PUBLIC), ids=str)
def test_forged_tokens_are_refused(client, attempt) -> None:
    assert_unauthorized(attempt.send(client), attempt.case)


@pytest.mark.parametrize("path", ["/api/v1/votes/", "/api/v3/votes/"])
def test_a_genuine_token_lists_the_callers_votes(client, path) -> None:
    response = client.get(path, **bearer(make_access_token(4711, "genuine")))
    assert response.status_code == 200, response.content


def test_internal_endpoints_need_the_service_credential(client) -> None:
    assert assert_service_only(client, f"/internal/polls/{uuid.uuid4()}/votes/", callers=["choices"]).status_code in (
        200,
        404,
    )


# --- OAuth machine clients (client_credentials tokens): only where a view requires a scope they hold ---------


def test_a_client_token_with_results_read_reads_results(client, open_poll) -> None:
    token = make_client_token("dashboard", scope="results:read")
    response = client.get(f"/api/v1/results/{open_poll.id}/", **bearer(token))
    assert response.status_code == 200, response.content
    assert response.json()["poll"] == str(open_poll.id)


@pytest.mark.parametrize("method, path, body", PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED])
def test_a_client_token_is_no_user(client, method, path, body) -> None:
    response = getattr(client, method)(path, body, format="json", **bearer(make_client_token("dashboard")))
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "Client tokens are not accepted here."


def test_a_client_token_without_the_scope_is_refused_even_where_anyone_may_read(client, open_poll) -> None:
    response = client.get(f"/api/v1/results/{open_poll.id}/", **bearer(make_client_token("dashboard", scope="")))
    assert response.status_code == 403
    assert response.json()["detail"] == "This client's token does not grant results:read."
    malformed = make_client_token("dashboard", scope=["results:read"])
    assert client.get(f"/api/v1/results/{open_poll.id}/", **bearer(malformed)).status_code == 401
