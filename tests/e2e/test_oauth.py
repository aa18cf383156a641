"""OAuth 2.0 through the gateway, driven by a stock client library (Authlib) as a third-party client would.

The client discovers the endpoints from the RFC 8414 metadata, logs in with the password grant, calls
the API with the token it holds (all three services), refreshes, revokes its refresh token (RFC 7009),
and is refused a refresh afterwards with the RFC 6749 error its library understands. A registered
machine client gets a ``results:read`` token with ``client_credentials`` and reads results with it, and
nothing else.
"""

from __future__ import annotations

import uuid

import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from scripts.loadgen import Platform

pytestmark = pytest.mark.stack


@pytest.fixture
def account(stack) -> dict[str, str]:
    credentials = {"username": f"oauth-{uuid.uuid4().hex[:10]}", "password": f"{uuid.uuid4()} oauth"}
    created = requests.post(f"{stack.gateway_url}/api/v1/auth/register/", json=credentials, timeout=15)
    assert created.status_code == 201, created.text
    return credentials


@pytest.fixture
def metadata(stack) -> dict:
    response = requests.get(f"{stack.gateway_url}/.well-known/oauth-authorization-server", timeout=15)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_metadata_points_at_the_gateway(stack, metadata) -> None:
    assert metadata["issuer"] == stack.gateway_url
    assert metadata["token_endpoint"] == f"{stack.gateway_url}/oauth/token/"
    jwks = requests.get(metadata["jwks_uri"], timeout=15)
    assert jwks.status_code == 200 and jwks.json()["keys"], jwks.text


def test_a_stock_oauth_client_logs_in_calls_the_api_refreshes_and_revokes(stack, metadata, account) -> None:
    client = OAuth2Session(client_id="third-party-app", token_endpoint_auth_method="none")
    token = client.fetch_token(metadata["token_endpoint"], username=account["username"], password=account["password"])
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0 and token["refresh_token"]

    # The library sends the token it holds; every service accepts it.
    me = client.get(f"{stack.gateway_url}/api/v1/auth/me/", timeout=15)
    assert me.status_code == 200 and me.json()["username"] == account["username"]
    for path in (f"/api/v2/choices/?poll={uuid.uuid4()}", "/api/v1/votes/"):
        assert client.get(stack.gateway_url + path, timeout=15).status_code == 200, path

    first_refresh = token["refresh_token"]
    refreshed = client.refresh_token(metadata["token_endpoint"])
    assert refreshed["refresh_token"] != first_refresh and refreshed["access_token"] != token["access_token"]
    assert client.get(f"{stack.gateway_url}/api/v1/auth/me/", timeout=15).status_code == 200

    revoked = client.revoke_token(
        metadata["revocation_endpoint"], token=refreshed["refresh_token"], token_type_hint="refresh_token"
    )
    assert revoked.status_code == 200, revoked.text
    with pytest.raises(OAuthError) as refused:
        client.refresh_token(metadata["token_endpoint"], refresh_token=refreshed["refresh_token"])
    assert refused.value.error == "invalid_grant"


def test_a_wrong_password_is_an_error_the_library_understands(metadata, account) -> None:
    client = OAuth2Session(client_id="third-party-app", token_endpoint_auth_method="none")
    with pytest.raises(OAuthError) as refused:
        client.fetch_token(metadata["token_endpoint"], username=account["username"], password="not it")
    assert refused.value.error == "invalid_grant"


def test_a_registered_machine_client_reads_results_and_nothing_else(stack, metadata) -> None:
    client_id = f"dashboard-{uuid.uuid4().hex[:8]}"
    printed = stack.manage("polls", "oauth_client_register", client_id, "Results dashboard", "--scope", "results:read")
    secret = dict(line.split("=", 1) for line in printed.stdout.split())["client_secret"]
    assert "results:read" in metadata["scopes_supported"] and "client_credentials" in metadata["grant_types_supported"]

    client = OAuth2Session(client_id=client_id, client_secret=secret, scope="results:read")
    token = client.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert token["scope"] == "results:read" and "refresh_token" not in token

    platform = Platform(gateway_url=stack.gateway_url, run_dir=stack.run_dir, owner_id=930_001)
    (poll,) = platform.create_polls(1, choices=2)
    platform.wait_warm([poll])  # vote_service has heard the poll opened (until then a draft there: 404)
    results = client.get(f"{stack.gateway_url}/api/v1/results/{poll.id}/", timeout=15)
    assert results.status_code == 200 and results.json()["poll"] == poll.id, results.text
    for path in ("/api/v1/votes/", "/api/v1/auth/me/", f"/api/v2/choices/?poll={poll.id}"):
        refused = client.get(stack.gateway_url + path, timeout=15)
        assert refused.status_code == 403, (path, refused.text)

    wrong = OAuth2Session(client_id=client_id, client_secret="not the secret")
    with pytest.raises(OAuthError) as refused:
        wrong.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert refused.value.error == "invalid_client"
