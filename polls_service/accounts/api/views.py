"""Auth endpoints at ``/api/v{1,2,3}/auth/...``: register, token, token/refresh, logout, me.

Credential endpoints authenticate by their body, never by an ``Authorization`` header (a stale
token must not stop a login), and ``register``/``token`` are throttled per client IP and username.
Each outcome goes to the audit trail (``auth.*``); failed logins feed the credential-stuffing and
brute-force rules and a reused refresh token is a ``threat.refresh_reuse`` (``servicekit.detection``),
whose blocks the login view honours (``LoginBlockThrottle``).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import services
from accounts.api.serializers import (
    PasswordChangeSerializer,
    RefreshSerializer,
    RegisterSerializer,
    TokenObtainSerializer,
    TokenPairSerializer,
    UserSerializer,
)
from accounts.tokens import roles_of
from servicekit import audit, detection, jwks
from servicekit.api import VersionedAPIView
from servicekit.api.hal import action, link
from servicekit.auth import keyring
from servicekit.permissions import IsAuthenticated
from servicekit.ratelimit import rate_limited
from servicekit.throttling import CredentialThrottle


def _auth_links(version: str) -> dict[str, Any]:
    base = f"/api/{version}/auth"
    return {
        "me": link(f"{base}/me/"),
        "refresh": action(f"{base}/token/refresh/", "POST"),
        "logout": action(f"{base}/logout/", "POST"),
        "logout-everywhere": action(f"{base}/logout/all/", "POST"),
        "password": action(f"{base}/password/", "POST"),
    }


def _pair_body(request: Request, pair: services.TokenPair) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access": pair.access,
        "refresh": pair.refresh,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
    }
    if request.version == "v3":
        body["_links"] = {"self": link(request.path), **_auth_links(request.version)}
    return body


class CredentialView(VersionedAPIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    error_statuses = {"post": (401, 429)}

    def get_authenticate_header(self, request: Request) -> str:
        # No authenticator runs here, but a rejected refresh token is still a 401 Bearer challenge.
        return 'Bearer realm="api"'

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # Idempotency-Key (v2+) would store this answer -- fresh tokens -- in the cache and replay it to
        # anyone repeating the request, e.g. with a refresh token that rotation has just revoked. Every
        # credential request is therefore executed, never replayed.
        claim = getattr(self, "_idempotency_claim", None)
        if claim is not None:
            claim.release()
            self._idempotency_claim = None


class RegisterView(CredentialView):
    throttle_classes = [CredentialThrottle]
    throttle_scope = "register"
    error_statuses = {"post": (401, 409, 429)}  # 409: the username is taken (ignoring case)

    @extend_schema(
        request=RegisterSerializer,
        responses={201: UserSerializer},
        summary="Create an account",
    )
    def post(self, request: Request, version: str) -> Response:
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_register(**serializer.validated_data)
        audit.record("auth.register", request=request, actor=user, outcome=audit.SUCCESS)
        body: dict[str, Any] = {"id": user.pk, "username": user.get_username(), "roles": roles_of(user)}
        if version == "v3":
            body["_links"] = {"self": link(request.path), "token": action(f"/api/{version}/auth/token/", "POST")}
        return Response(body, status=status.HTTP_201_CREATED)


class LoginThrottling:
    """The login budgets (per address and username) and the login rules' blocks (``servicekit.detection``)."""

    throttle_classes = [detection.LoginBlockThrottle, CredentialThrottle]
    throttle_scope = "login"

    def throttled(self, request: Request, wait: float | None) -> None:
        # An attempt over the budget is a failed attempt too; a blocked caller hears it is blocked.
        blocked = detection.login_throttled(request)
        if blocked:
            raise detection.Blocked(blocked)
        super().throttled(request, wait)  # type: ignore[misc]  # the APIView it is mixed into


class TokenObtainView(LoginThrottling, CredentialView):
    @extend_schema(request=TokenObtainSerializer, responses={200: TokenPairSerializer}, summary="Log in")
    def post(self, request: Request, version: str) -> Response:
        serializer = TokenObtainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(_pair_body(request, login(request, **serializer.validated_data)))


def login(request: Request, *, username: str, password: str) -> services.TokenPair:
    """A token pair for valid credentials, audited; a failure also feeds the login rules (servicekit.detection)."""
    try:
        pair = services.token_obtain(username=username, password=password)
    except services.InvalidCredentials:
        audit.record("auth.login", request=request, actor=username, outcome=audit.FAILURE)
        detection.login_failed(request, username=username)
        raise
    audit.record("auth.login", request=request, actor=pair.user, outcome=audit.SUCCESS)
    return pair


def rotate(request: Request, *, refresh: str) -> services.TokenPair:
    """A new pair for a refresh token, audited; a reused one is a threat (its family is revoked)."""
    try:
        pair = services.token_refresh(refresh=refresh)
    except services.RefreshTokenReused as reuse:
        audit.record("auth.refresh_reuse", request=request, actor=reuse.user, outcome=audit.FAILURE)
        detection.refresh_reused(request, actor=reuse.user, revoked=reuse.revoked)
        raise
    audit.record("auth.refresh", request=request, actor=pair.user, outcome=audit.SUCCESS)
    return pair


@rate_limited("token_refresh", key="ip")
class TokenRefreshView(CredentialView):
    @extend_schema(request=RefreshSerializer, responses={200: TokenPairSerializer}, summary="Rotate the refresh token")
    def post(self, request: Request, version: str) -> Response:
        serializer = RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(_pair_body(request, rotate(request, refresh=serializer.validated_data["refresh"])))


class LogoutView(CredentialView):
    @extend_schema(request=RefreshSerializer, responses={204: None}, summary="Revoke a refresh token")
    def post(self, request: Request, version: str) -> Response:
        serializer = RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        logout(request, refresh=serializer.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


def logout(request: Request, *, refresh: str) -> None:
    """Revoke a refresh token, audited."""
    user = services.token_revoke(refresh=refresh)
    audit.record("auth.logout", request=request, actor=user, outcome=audit.SUCCESS)


class LogoutEverywhereView(VersionedAPIView):
    """Ends every session of the caller: refresh tokens revoked, access tokens refused by every service."""

    permission_classes = [IsAuthenticated]
    error_statuses = {"post": (401,)}

    @extend_schema(request=None, responses={204: None}, summary="Log out everywhere (every session of the caller)")
    def post(self, request: Request, version: str) -> Response:
        services.logout_everywhere(user_id=request.user.id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(VersionedAPIView):
    """A new password ends every session (all services); the answer is a new token pair for this client."""

    permission_classes = [IsAuthenticated]
    error_statuses = {"post": (401,)}

    @extend_schema(
        request=PasswordChangeSerializer,
        responses={200: TokenPairSerializer},
        summary="Change the password (ends every other session)",
    )
    def post(self, request: Request, version: str) -> Response:
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            pair = services.password_change(user_id=request.user.id, **serializer.validated_data)
        except services.InvalidCredentials:
            audit.record("auth.password_change", request=request, actor=request.user, outcome=audit.FAILURE)
            raise
        audit.record("auth.password_change", request=request, actor=pair.user, outcome=audit.SUCCESS)
        return Response(_pair_body(request, pair))


class MeView(VersionedAPIView):
    permission_classes = [IsAuthenticated]
    error_statuses = {"get": (401,)}

    @extend_schema(responses={200: UserSerializer}, summary="The caller, as the access token describes them")
    def get(self, request: Request, version: str) -> Response:
        actor = request.user
        body: dict[str, Any] = {"id": actor.id, "username": actor.username, "roles": sorted(actor.roles)}
        if version == "v3":
            body["_links"] = {"self": link(request.path), **_auth_links(version)}
            body["_links"].pop("me")
        return Response(body)


@require_GET
@cache_control(public=True, max_age=300)
def jwks_view(request: HttpRequest) -> JsonResponse:
    """``/.well-known/jwks.json``: the signing key and any other published (rotation) keys."""
    return JsonResponse(jwks.jwk_set(keyring().published_keys()))
