"""OAuth 2.0 for third-party clients, beside the JSON auth API: RFC 6749 token endpoint, RFC 7009
revocation, RFC 8414 metadata.

- ``POST /oauth/token/`` (``application/x-www-form-urlencoded``): ``grant_type=password`` (``username``,
  ``password``), ``grant_type=refresh_token`` (``refresh_token``, rotated as by the JSON API: a reused
  one revokes its family) or ``grant_type=client_credentials`` for a registered machine client
  (``accounts.models.OAuthClient``; HTTP Basic or ``client_id``/``client_secret`` in the body; optional
  ``scope``). The answer is RFC 6749 §5.1 (``access_token``, ``token_type``, ``expires_in``, and
  ``refresh_token`` or ``scope``), an error RFC 6749 §5.2 (``{"error", "error_description"}``, 400, or
  401 ``invalid_client``), never cached.
- ``POST /oauth/revoke/``: RFC 7009. A refresh token is revoked; an unknown, expired or malformed token
  is a 200 as well (the client's goal is reached); an access token is ``unsupported_token_type``: it
  cannot be revoked alone (``auth/logout/all/`` ends every session).
- ``GET /.well-known/oauth-authorization-server``: RFC 8414 metadata, the endpoints as absolute URLs of
  the host the client used (through the gateway: its public address).

For the user grants clients are public (``token_endpoint_auth_method`` ``none``: a ``client_id`` is
accepted and not checked). The same throttles, login rules, audit entries and token rotation as the JSON
endpoints apply: this module speaks the protocol and delegates to ``accounts.api.views`` and ``services``.
A machine client's token is accepted only by views that require one of its scopes
(``servicekit.auth.client_principal``).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote_plus

from drf_spectacular.utils import extend_schema
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.api import views
from accounts.models import SCOPES
from servicekit import audit
from servicekit.auth import InvalidToken, verify_token

GRANT_TYPES = ("password", "refresh_token", "client_credentials")
MAX_PARAMETER_LENGTH = {
    "username": 150,
    "password": 128,
    "refresh_token": 8192,
    "token": 8192,
    "client_id": 64,
    "client_secret": 128,
}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: ``error`` code, human-readable description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def response(self) -> Response:
        headers = dict(NO_STORE)
        if self.status == 401:  # RFC 6749 §5.2: a failed client authentication names the scheme to use
            headers["WWW-Authenticate"] = 'Basic realm="oauth"'
        return Response({"error": self.error, "error_description": self.description}, self.status, headers=headers)


def _parameter(request: Request, name: str) -> str:
    """A required form parameter, present once and within its length (``invalid_request`` otherwise)."""
    values = request.data.getlist(name) if hasattr(request.data, "getlist") else []
    if len(values) != 1 or not values[0]:
        raise OAuthError("invalid_request", f"The request needs exactly one '{name}' parameter.")
    if len(values[0]) > MAX_PARAMETER_LENGTH.get(name, 1024):
        raise OAuthError("invalid_request", f"The '{name}' parameter is too long.")
    return str(values[0])


# Not in the versioned OpenAPI documents: OAuth has no API version, and RFC 8414 metadata is how OAuth
# clients discover it (README, "OAuth 2.0").
@extend_schema(exclude=True)
class OAuthView(APIView):
    """Form-encoded in, JSON out; authenticated by the body only (a stale ``Authorization`` never matters)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser]
    renderer_classes = [JSONRenderer]

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def post(self, request: Request) -> Response:
        try:
            return self.handle(request)
        except OAuthError as refused:
            return refused.response()


class TokenView(views.LoginThrottling, OAuthView):
    """RFC 6749 token endpoint: the password and refresh_token grants (throttled as the JSON login)."""

    def handle(self, request: Request) -> Response:
        grant_type = _parameter(request, "grant_type")
        if grant_type not in GRANT_TYPES:
            raise OAuthError("unsupported_grant_type", f"Supported grant types: {', '.join(GRANT_TYPES)}.")
        if grant_type == "client_credentials":
            return self.client_credentials(request)
        if request.data.get("scope"):
            raise OAuthError("invalid_scope", "User tokens carry no scopes; send no 'scope'.")
        try:
            if grant_type == "password":
                pair = views.login(
                    request, username=_parameter(request, "username"), password=_parameter(request, "password")
                )
            else:
                pair = views.rotate(request, refresh=_parameter(request, "refresh_token"))
        except services.InvalidCredentials as exc:
            raise OAuthError("invalid_grant", "The username or password is not correct.") from exc
        except InvalidToken as exc:
            raise OAuthError("invalid_grant", str(exc.detail)) from exc
        body = {
            "access_token": pair.access,
            "token_type": "Bearer",
            "expires_in": pair.expires_in,
            "refresh_token": pair.refresh,
        }
        return Response(body, headers=NO_STORE)

    def client_credentials(self, request: Request) -> Response:
        """A registered machine client's token (RFC 6749 §4.4): no refresh token, its granted ``scope``."""
        client_id, secret = _client_authentication(request)
        try:
            minted, granted = services.client_credentials_issue(
                client_id=client_id, secret=secret, scope=str(request.data.get("scope") or "")
            )
        except services.InvalidClient as exc:
            audit.record("auth.client_credentials", request=request, actor=client_id, outcome=audit.FAILURE)
            raise OAuthError("invalid_client", "The client is unknown or its secret is wrong.", status=401) from exc
        except services.InvalidScope as exc:
            raise OAuthError("invalid_scope", f"Not granted to this client: {' '.join(exc.args[0])}.") from exc
        audit.record("auth.client_credentials", request=request, actor=client_id, outcome=audit.SUCCESS)
        body = {
            "access_token": minted.token,
            "token_type": "Bearer",
            "expires_in": minted.expires_at - minted.issued_at,
            "scope": " ".join(granted),
        }
        return Response(body, headers=NO_STORE)


def _client_authentication(request: Request) -> tuple[str, str]:
    """``client_secret_basic`` (RFC 6749 §2.3.1: form-encoded id and secret in HTTP Basic) or
    ``client_secret_post`` (both in the body); exactly one of them."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    in_body = "client_id" in request.data or "client_secret" in request.data
    if header:
        if in_body:
            raise OAuthError("invalid_request", "Authenticate the client one way only.")
        scheme, _, encoded = header.partition(" ")
        try:
            if scheme.lower() != "basic":
                raise ValueError(scheme)
            client_id, separator, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
            raise OAuthError("invalid_client", "Malformed client credentials.", status=401) from exc
        if not separator:
            raise OAuthError("invalid_client", "Malformed client credentials.", status=401)
        return unquote_plus(client_id), unquote_plus(secret)
    if not in_body:
        raise OAuthError("invalid_client", "The client_credentials grant needs client authentication.", status=401)
    return _parameter(request, "client_id"), _parameter(request, "client_secret")


class RevocationView(OAuthView):
    """RFC 7009 revocation of refresh tokens."""

    def handle(self, request: Request) -> Response:
        token = _parameter(request, "token")
        try:
            views.logout(request, refresh=token)
        except InvalidToken:
            try:
                verify_token(token, token_type="access")
            except InvalidToken:
                return Response(status=200, headers=NO_STORE)  # invalid tokens are no error (RFC 7009 §2.2)
            raise OAuthError(
                "unsupported_token_type",
                "An access token cannot be revoked alone; it expires within minutes (or end every session).",
            ) from None
        return Response(status=200, headers=NO_STORE)


@extend_schema(exclude=True)
class MetadataView(APIView):
    """``/.well-known/oauth-authorization-server`` (RFC 8414)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]

    def get(self, request: Request) -> Response:
        base = request.build_absolute_uri("/").rstrip("/")
        body = {
            "issuer": base,
            "token_endpoint": f"{base}/oauth/token/",
            "revocation_endpoint": f"{base}/oauth/revoke/",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "grant_types_supported": list(GRANT_TYPES),
            "response_types_supported": [],  # no authorization endpoint: no browser redirect flows
            # Public clients for the user grants; registered machine clients authenticate for client_credentials.
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "scopes_supported": sorted(SCOPES),
            "revocation_endpoint_auth_methods_supported": ["none"],
            "service_documentation": f"{base}/api/docs/",
        }
        return Response(body, headers={"Cache-Control": "public, max-age=300"})
