"""Writes of the accounts app: registration, password change and the token life cycle (issue, rotate,
revoke, revoke every session).

Refresh tokens are recorded in simplejwt's ``OutstandingToken`` table and revoked through its
``BlacklistedToken`` table. Rotation is atomic: the refresh token's row is locked
(``SELECT ... FOR UPDATE``) and blacklisted in the same transaction that issues its successor, and
``BlacklistedToken``'s one-to-one constraint backs that up, so of any number of concurrent refreshes
with one token exactly one succeeds.

Revoking a user's sessions (``sessions_revoke``: logout everywhere, a password change, a demotion or
deactivation, a reused refresh token) blacklists every refresh token and increments the user's
session generation (``servicekit.sessions``) in one transaction, emitting ``user.sessions_revoked``
so choice_service and vote_service refuse the user's older access tokens too.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from prometheus_client import Counter
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import selectors, tokens
from accounts.models import SCOPES, OAuthClient, invalid_scopes
from servicekit import audit, sessions
from servicekit.auth import InvalidToken, record_auth_failure, verify_token
from servicekit.errors import Conflict, Problem
from servicekit.events import emit

# A refresh token presented again after rotation or logout: a stolen copy, or a replaying client. Labelled,
# so that no metrics file is created at import (manage.py runs before the multiprocess folder exists).
REFRESH_REUSE = Counter(
    "auth_refresh_token_reuse_total", "Refresh tokens presented again after rotation or logout.", ["service"]
)


class InvalidCredentials(Problem):
    status_code = 401
    default_detail = "The username or password is not correct."
    default_code = "invalid-credentials"

    def __init__(self) -> None:
        super().__init__(headers={"WWW-Authenticate": 'Bearer realm="api"'})


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int
    user: AbstractBaseUser | None = None  # whom it was issued to (for the audit trail), never rendered


def user_register(*, username: str, password: str, email: str = "") -> AbstractBaseUser:
    """Create a regular user (never staff); 400 for a weak password, 409 for a taken username."""
    User = get_user_model()
    candidate = User(username=username, email=email)
    _validate_password(password, user=candidate)
    taken = Conflict(
        "That username is taken.",
        code="username-taken",
        errors={"username": ["A user with that username already exists."]},
    )
    if selectors.user_get_by_username(username=username) is not None:
        raise taken
    candidate.set_password(password)
    try:
        with transaction.atomic():
            candidate.save()
    except IntegrityError as exc:  # a concurrent registration of the same name (any case) won
        raise taken from exc
    return candidate


def token_pair_issue(*, user: AbstractBaseUser) -> TokenPair:
    """A new access token and a new (recorded) refresh token for ``user``, in its current session generation."""
    generation = sessions.current_generation(user_id=user.pk)
    access = tokens.mint(user, token_type="access", lifetime=tokens.access_lifetime(), generation=generation)
    refresh = tokens.mint(user, token_type="refresh", lifetime=tokens.refresh_lifetime(), generation=generation)
    OutstandingToken.objects.create(
        user=user,
        jti=refresh.jti,
        token="",  # the bearer credential itself is never stored
        created_at=datetime.fromtimestamp(refresh.issued_at, tz=UTC),
        expires_at=datetime.fromtimestamp(refresh.expires_at, tz=UTC),
    )
    return TokenPair(access=access.token, refresh=refresh.token, expires_in=tokens.access_lifetime(), user=user)


def token_obtain(*, username: str, password: str) -> TokenPair:
    """Check the credentials and issue a token pair; 401 ``InvalidCredentials`` otherwise."""
    user = selectors.user_get_by_username(username=username)
    if user is None:
        get_user_model()().set_password(password)  # same work as a real check: no user enumeration by timing
        record_auth_failure("invalid_credentials")
        raise InvalidCredentials()
    if not user.check_password(password) or not user.is_active:
        record_auth_failure("invalid_credentials")
        raise InvalidCredentials()
    with transaction.atomic():
        return token_pair_issue(user=user)


def _locked_outstanding(claims: dict) -> OutstandingToken:
    outstanding = OutstandingToken.objects.select_for_update().filter(jti=claims["jti"]).first()
    if outstanding is None or str(outstanding.user_id) != claims["sub"]:
        raise InvalidToken("The refresh token is not known.")
    return outstanding


class RefreshTokenReused(InvalidToken):
    """A refresh token presented again after rotation or logout; every refresh token of its user is revoked."""

    def __init__(self, *, user: AbstractBaseUser, revoked: int):
        super().__init__("The refresh token has been used or revoked.", reason="refresh_reused")
        self.user = user
        self.revoked = revoked


def token_refresh(*, refresh: str) -> TokenPair:
    """Rotate: blacklist ``refresh`` and issue a new pair, atomically; 401 if it was used or revoked.

    A token that was already rotated or revoked is a stolen copy or a replaying client: whoever holds the
    tokens issued since is not to be trusted either, so the user's whole token family -- every refresh
    token still outstanding, the rotated-in one included -- is revoked (``RefreshTokenReused``).
    """
    claims = verify_token(refresh, token_type="refresh")
    if sessions.token_generation(claims) < sessions.current_generation(user_id=int(claims["sub"])):
        # Blacklisted by a revocation of every session, not rotated: refused, but not a reuse.
        raise InvalidToken("The session has been revoked; log in again.", reason="revoked")
    try:
        with transaction.atomic():
            outstanding = _locked_outstanding(claims)
            reused = BlacklistedToken.objects.filter(token=outstanding).exists()
            if not reused:
                BlacklistedToken.objects.create(token=outstanding)
                user = selectors.user_get_active(user_id=int(claims["sub"]))
                if user is None:
                    raise InvalidToken("The account is disabled.")
                return token_pair_issue(user=user)
    except IntegrityError as exc:  # lost a race the row lock did not cover (e.g. SQLite)
        raise InvalidToken("The refresh token has been used or revoked.") from exc
    # Outside the rotation's transaction: the revocation commits although the request fails.
    REFRESH_REUSE.labels("polls").inc()
    record_auth_failure("refresh_reused")
    revoked = sessions_revoke(user=outstanding.user, reason=REASON_REFRESH_REUSE)
    raise RefreshTokenReused(user=outstanding.user, revoked=revoked)


def token_family_revoke(*, user_id: int) -> int:
    """Blacklist every unexpired refresh token of ``user_id`` not yet revoked; how many were revoked."""
    live = list(
        OutstandingToken.objects.filter(user_id=user_id, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True)
    )
    # A concurrent revocation may blacklist some of them first: the one-to-one constraint absorbs it.
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=token) for token in live], ignore_conflicts=True)
    return len(live)


REASON_LOGOUT_EVERYWHERE = "logout_everywhere"
REASON_PASSWORD_CHANGED = "password_changed"
REASON_DEMOTED = "demoted"
REASON_DEACTIVATED = "deactivated"
REASON_REFRESH_REUSE = "refresh_reuse"


def sessions_revoke(*, user: AbstractBaseUser, reason: str) -> int:
    """End every session of ``user``: its refresh tokens are blacklisted and its access tokens refused by
    every service (a new session generation, ``user.sessions_revoked``); how many refresh tokens died."""
    with transaction.atomic():
        generation = sessions.revoke(user_id=user.pk)
        revoked = token_family_revoke(user_id=user.pk)
        emit(
            "user.sessions_revoked",
            aggregate_id=str(user.pk),
            version=generation,
            data={"user_id": user.pk, "generation": generation, "reason": reason},
        )
    audit.record("auth.sessions_revoked", actor=user, outcome=audit.SUCCESS, detail={"reason": reason})
    return revoked


def logout_everywhere(*, user_id: int) -> None:
    """The caller ends every session of its own (a deactivated account's ended with the deactivation)."""
    user = selectors.user_get_active(user_id=user_id)
    if user is not None:
        sessions_revoke(user=user, reason=REASON_LOGOUT_EVERYWHERE)


def user_saved(*, user: AbstractBaseUser, before: dict[str, object] | None) -> None:
    """After any save of a user (API, admin, shell): a new password, fewer roles or a deactivation
    ends every session. ``before`` is what ``user_state`` said before the save (None: a new user)."""
    if before is None:
        return
    after = user_state(user)
    if before["active"] and not after["active"]:
        sessions_revoke(user=user, reason=REASON_DEACTIVATED)
    elif not set(after["roles"]) >= set(before["roles"]):
        sessions_revoke(user=user, reason=REASON_DEMOTED)
    elif before["password"] != after["password"]:
        sessions_revoke(user=user, reason=REASON_PASSWORD_CHANGED)


def user_state(user: AbstractBaseUser) -> dict[str, object]:
    """What of a user decides whether its sessions survive a save."""
    return {"active": user.is_active, "roles": tokens.roles_of(user), "password": user.password}


def password_change(*, user_id: int, current_password: str, new_password: str) -> TokenPair:
    """Check ``current_password`` (401 otherwise), validate and set ``new_password`` (400 if weak):
    every session ends (``user_saved``), and a new token pair for this client is returned."""
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().filter(pk=user_id, is_active=True).first()
        if user is None or not user.check_password(current_password):
            record_auth_failure("invalid_credentials")
            raise InvalidCredentials()
        _validate_password(new_password, user=user)
        user.set_password(new_password)
        user.save(update_fields=["password"])
        return token_pair_issue(user=user)


def _validate_password(password: str, *, user: AbstractBaseUser) -> None:
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise Problem(
            "password: " + exc.messages[0], status=400, code="validation-error", errors={"password": list(exc.messages)}
        ) from exc


def token_revoke(*, refresh: str) -> AbstractBaseUser:
    """Log out: blacklist ``refresh`` (idempotent); its user. Access tokens stay valid until they expire."""
    claims = verify_token(refresh, token_type="refresh")
    with transaction.atomic():
        outstanding = _locked_outstanding(claims)
        BlacklistedToken.objects.get_or_create(token=outstanding)
    return outstanding.user


def token_flush_expired() -> int:
    """Delete records of refresh tokens that have expired (a blacklist entry goes with its token)."""
    with transaction.atomic():
        deleted, _ = OutstandingToken.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


# --- OAuth 2.0 machine clients (client_credentials) ----------------------------------------------------


class InvalidClient(Exception):
    """Unknown client, wrong secret, or an inactive client (RFC 6749 ``invalid_client``)."""


class InvalidScope(Exception):
    """A scope the client was not granted (RFC 6749 ``invalid_scope``)."""


def oauth_client_register(*, client_id: str, name: str, scopes: list[str]) -> tuple[OAuthClient, str]:
    """Register a machine client; the secret is returned once and only its hash is kept."""
    invalid = invalid_scopes(scopes)
    if invalid is not None:
        raise ValueError(f"scopes must be some of {sorted(SCOPES)}, not {invalid or 'none'}")
    secret = secrets.token_urlsafe(32)
    client = OAuthClient.objects.create(
        client_id=client_id, name=name, scopes=" ".join(sorted(set(scopes))), secret_hash=make_password(secret)
    )
    return client, secret


def client_credentials_issue(*, client_id: str, secret: str, scope: str = "") -> tuple[tokens.MintedToken, list[str]]:
    """An access token for an authenticated client, with the requested scopes (default: all it holds)."""
    client = selectors.oauth_client_get_active(client_id=client_id)
    if client is None:
        make_password(secret)  # the same work as a real check: no client enumeration by timing
        record_auth_failure("invalid_client")
        raise InvalidClient()
    if not check_password(secret, client.secret_hash):
        record_auth_failure("invalid_client")
        raise InvalidClient()
    requested = set(scope.split()) if scope else set(client.scope_set)
    if not requested <= client.scope_set:
        raise InvalidScope(sorted(requested - client.scope_set))
    granted = sorted(requested)
    return tokens.mint_client_token(
        client_id=client.client_id, scopes=granted, lifetime=tokens.access_lifetime()
    ), granted
