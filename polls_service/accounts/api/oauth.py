"""OAuth 2.0 for third-party clients, beside the JSON auth API: RFC 6749 token endpoint, RFC 7009
revocation, RFC 8414 metadata.

- ``POST /oauth/token/`` (``application/x-www-form-urlencoded``): ``grant_type=password`` (``username``,
  ``password``) or ``grant_type=refresh_token`` (``refresh_token``, rotated as by the JSON API: a reused
  one revokes its family). The answer is RFC 6749 §5.1 (``access_token``, ``token_type``, ``expires_in``,
  ``refresh_token``), an error RFC 6749 §5.2 (``{"error", "error_description"}``, 400), never cached.
- ``POST /oauth/revoke/``: RFC 7009. A refresh token is revoked; an unknown, expired or malformed token
  is a 200 as well (the client's goal is reached); an access token is ``unsupported_token_type``: it
  cannot be revoked alone (``auth/logout/all/`` ends every session).
- ``GET /.well-known/oauth-authorization-server``: RFC 8414 metadata, the endpoints as absolute URLs of
  the host the client used (through the gateway: its public address).

Clients are public (``token_endpoint_auth_method`` ``none``): a ``client_id`` is accepted and not checked,
as no client holds a secret. The same throttles, login rules, audit entries and token rotation as the
JSON endpoints apply: this module only speaks the protocol and delegates to ``accounts.api.views``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.api import views
from servicekit.auth import InvalidToken, verify_token

GRANT_TYPES = ("password", "refresh_token")
MAX_PARAMETER_LENGTH = {"username": 150, "password": 128, "refresh_token": 8192, "token": 8192}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: ``error`` code, human-readable description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def response(self) -> Response:
        return Response({"error": self.error, "error_description": self.description}, self.status, headers=NO_STORE)


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
        if request.data.get("scope"):
            raise OAuthError("invalid_scope", "This server issues no scoped tokens; send no 'scope'.")
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
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "service_documentation": f"{base}/api/docs/",
        }
        return Response(body, headers={"Cache-Control": "public, max-age=300"})
