"""OAuth 2.0 endpoints (accounts.api.oauth): RFC 6749 grants and errors, RFC 7009 revocation, RFC 8414 metadata.

The same accounts, rotation, audit trail and detection as the JSON auth API; only the protocol differs.
(A stock client library drives them through the gateway in tests/e2e/test_oauth.py.)
"""

from __future__ import annotations

import base64
import io
from urllib.parse import quote_plus, urlencode

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from accounts import services
from accounts.models import OAuthClient
from accounts.tests.conftest import PASSWORD
from servicekit.auth import verify_token
from servicekit.models import AuditEntry
from servicekit.testing import bearer

pytestmark = pytest.mark.django_db

TOKEN, REVOKE = "/oauth/token/", "/oauth/revoke/"
FORM = "application/x-www-form-urlencoded"


def post_form(api, path: str, data: dict):
    return api.generic("POST", path, urlencode(data, doseq=True), content_type=FORM)


def password_grant(api, user, password: str = PASSWORD):
    return post_form(api, TOKEN, {"grant_type": "password", "username": user.username, "password": password})


def oauth_error(response, error: str, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["error"] == error and body["error_description"], body
    return body


def test_the_password_grant_answers_rfc_6749_tokens(api, user) -> None:
    response = password_grant(api, user)
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store" and response["Pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert verify_token(body["access_token"])["sub"] == str(user.pk)
    assert verify_token(body["refresh_token"], token_type="refresh")["sub"] == str(user.pk)
    assert api.get("/api/v1/auth/me/", **bearer(body["access_token"])).json()["username"] == user.username
    assert AuditEntry.objects.filter(event="auth.login", outcome="success", actor_id=user.pk).exists()


def test_a_wrong_password_is_invalid_grant_and_audited(api, user) -> None:
    oauth_error(password_grant(api, user, "not the password"), "invalid_grant")
    assert AuditEntry.objects.filter(event="auth.login", outcome="failure", actor_username=user.username).exists()


def test_the_refresh_token_grant_rotates_and_a_reused_token_revokes_the_family(api, user) -> None:
    first = password_grant(api, user).json()
    rotated = post_form(api, TOKEN, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200, rotated.content
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    reused = post_form(api, TOKEN, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    oauth_error(reused, "invalid_grant")
    # The reuse revoked the rotated-in token too.
    again = post_form(api, TOKEN, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    oauth_error(again, "invalid_grant")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": ["password", "password"], "username": "a", "password": "b"}, "invalid_request"),
        ({"grant_type": "password", "username": "a"}, "invalid_request"),
        ({"grant_type": "password", "username": "a" * 151, "password": "b"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "not.a.token"}, "invalid_grant"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "a", "password": "b", "scope": "results:read"}, "invalid_scope"),
    ],
    ids=[
        "nothing",
        "a repeated parameter",
        "no password",
        "a username too long",
        "no refresh token",
        "a malformed refresh token",
        "authorization code",
        "a scope",
    ],
)
def test_bad_requests_are_rfc_6749_errors(api, data, error) -> None:
    oauth_error(post_form(api, TOKEN, data), error)


def test_json_is_not_the_oauth_encoding(api, user) -> None:
    response = api.post(
        TOKEN, {"grant_type": "password", "username": user.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 415 and response["Content-Type"] == "application/problem+json"


def test_revocation_ends_a_refresh_token_and_is_quiet_about_unknown_ones(api, user) -> None:
    pair = password_grant(api, user).json()
    assert (
        post_form(api, REVOKE, {"token": pair["refresh_token"], "token_type_hint": "refresh_token"}).status_code == 200
    )
    refused = post_form(api, TOKEN, {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})
    oauth_error(refused, "invalid_grant")
    assert AuditEntry.objects.filter(event="auth.logout", outcome="success", actor_id=user.pk).exists()
    # Revoking it again, or something that is no token at all, is no error (RFC 7009 §2.2).
    assert post_form(api, REVOKE, {"token": pair["refresh_token"]}).status_code == 200
    assert post_form(api, REVOKE, {"token": "garbage"}).status_code == 200
    oauth_error(post_form(api, REVOKE, {}), "invalid_request")


def test_an_access_token_cannot_be_revoked_alone(api, user) -> None:
    pair = password_grant(api, user).json()
    oauth_error(post_form(api, REVOKE, {"token": pair["access_token"]}), "unsupported_token_type")
    assert api.get("/api/v1/auth/me/", **bearer(pair["access_token"])).status_code == 200


def test_the_metadata_names_the_endpoints_on_the_host_the_client_used(api) -> None:
    # As the gateway forwards a request that came to https://localhost:8443.
    response = api.get(
        "/.well-known/oauth-authorization-server",
        HTTP_X_FORWARDED_HOST="localhost:8443",
        HTTP_X_FORWARDED_PROTO="https",
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=300"
    metadata = response.json()
    assert metadata["issuer"] == "https://localhost:8443"
    assert metadata["token_endpoint"] == "https://localhost:8443/oauth/token/"
    assert metadata["revocation_endpoint"] == "https://localhost:8443/oauth/revoke/"
    assert metadata["jwks_uri"] == "https://localhost:8443/.well-known/jwks.json"
    assert metadata["grant_types_supported"] == ["password", "refresh_token", "client_credentials"]
    assert metadata["response_types_supported"] == []
    assert metadata["token_endpoint_auth_methods_supported"] == ["none", "client_secret_basic", "client_secret_post"]
    assert metadata["scopes_supported"] == ["results:read"]


# --- client_credentials: registered machine clients -------------------------------------------------------


@pytest.fixture
def machine_client(db):
    client, secret = services.oauth_client_register(
        client_id="dashboard", name="Results dashboard", scopes=["results:read"]
    )
    return client, secret


def basic(client_id: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {encoded}"}


def test_a_registered_client_gets_a_scoped_token_without_a_refresh_token(api, machine_client) -> None:
    client, secret = machine_client
    response = api.generic(
        "POST", TOKEN, "grant_type=client_credentials", content_type=FORM, **basic(client.client_id, secret)
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"} and body["scope"] == "results:read"
    claims = verify_token(body["access_token"])
    assert (claims["sub"], claims["client_id"], claims["scope"]) == ("client:dashboard", "dashboard", "results:read")
    assert "username" not in claims and "roles" not in claims
    assert OAuthClient.objects.get(client_id="dashboard").secret_hash != secret  # only a hash is kept
    # A client is no user: this service refuses its token on every user endpoint.
    assert api.get("/api/v1/auth/me/", **bearer(body["access_token"])).status_code == 403
    assert (
        api.post("/api/v1/polls/", {"question": "?"}, format="json", **bearer(body["access_token"])).status_code == 403
    )


def test_the_client_may_authenticate_in_the_body_and_ask_for_its_scope(api, machine_client) -> None:
    client, secret = machine_client
    data = {"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": secret}
    response = post_form(api, TOKEN, {**data, "scope": "results:read"})
    assert response.status_code == 200 and response.json()["scope"] == "results:read"


@pytest.mark.parametrize(
    ("credentials", "error", "status"),
    [
        (lambda c, s: basic(c, "not the secret"), "invalid_client", 401),
        (lambda c, s: basic("nobody", s), "invalid_client", 401),
        (lambda c, s: {"HTTP_AUTHORIZATION": "Basic %%%"}, "invalid_client", 401),
        (lambda c, s: {"HTTP_AUTHORIZATION": "Bearer abc"}, "invalid_client", 401),
        (lambda c, s: {}, "invalid_client", 401),
    ],
    ids=["a wrong secret", "an unknown client", "malformed basic", "another scheme", "no authentication"],
)
def test_a_client_that_does_not_authenticate_is_invalid_client(api, machine_client, credentials, error, status) -> None:
    client, secret = machine_client
    response = api.generic(
        "POST", TOKEN, "grant_type=client_credentials", content_type=FORM, **credentials(client.client_id, secret)
    )
    oauth_error(response, error, status)
    assert response["WWW-Authenticate"] == 'Basic realm="oauth"'


def test_an_inactive_client_and_a_scope_it_lacks_are_refused(api, machine_client) -> None:
    client, secret = machine_client
    data = {"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": secret}
    oauth_error(post_form(api, TOKEN, {**data, "scope": "results:read polls:write"}), "invalid_scope")
    both = api.generic("POST", TOKEN, urlencode(data), content_type=FORM, **basic(client.client_id, secret))
    oauth_error(both, "invalid_request")
    OAuthClient.objects.filter(pk=client.pk).update(is_active=False)
    oauth_error(post_form(api, TOKEN, data), "invalid_client", 401)
    assert AuditEntry.objects.filter(
        event="auth.client_credentials", outcome="failure", actor_username="dashboard"
    ).exists()


def test_the_management_command_prints_the_secret_once(api, db) -> None:
    out = io.StringIO()
    call_command("oauth_client_register", "partner", "A partner", "--scope", "results:read", stdout=out)
    printed = dict(line.split("=", 1) for line in out.getvalue().split())
    data = {"grant_type": "client_credentials", "client_id": "partner", "client_secret": printed["client_secret"]}
    assert post_form(api, TOKEN, data).status_code == 200
    with pytest.raises(CommandError, match="exists already"):
        call_command("oauth_client_register", "partner", "Again", "--scope", "results:read", stdout=io.StringIO())


def test_scopes_are_the_known_ones(db) -> None:
    with pytest.raises(ValueError, match="scopes must be some of"):
        services.oauth_client_register(client_id="x", name="x", scopes=["everything"])
    with pytest.raises(ValidationError):
        OAuthClient(client_id="y", name="y", scopes="results:read admin").full_clean()
