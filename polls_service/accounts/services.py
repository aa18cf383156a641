"""Writes of the accounts app: registration and the token life cycle (issue, rotate, revoke).

Refresh tokens are recorded in simplejwt's ``OutstandingToken`` table and revoked through its
``BlacklistedToken`` table. Rotation is atomic: the refresh token's row is locked
(``SELECT ... FOR UPDATE``) and blacklisted in the same transaction that issues its successor, and
``BlacklistedToken``'s one-to-one constraint backs that up, so of any number of concurrent refreshes
with one token exactly one succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from prometheus_client import Counter
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import selectors, tokens
from servicekit.auth import InvalidToken, record_auth_failure, verify_token
from servicekit.errors import Conflict, Problem

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


def user_register(*, username: str, password: str, email: str = "") -> AbstractBaseUser:
    """Create a regular user (never staff); 400 for a weak password, 409 for a taken username."""
    User = get_user_model()
    candidate = User(username=username, email=email)
    try:
        password_validation.validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise Problem(
            "password: " + exc.messages[0], status=400, code="validation-error", errors={"password": list(exc.messages)}
        ) from exc
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
    """A new access token and a new (recorded) refresh token for ``user``."""
    access = tokens.mint(user, token_type="access", lifetime=tokens.access_lifetime())
    refresh = tokens.mint(user, token_type="refresh", lifetime=tokens.refresh_lifetime())
    OutstandingToken.objects.create(
        user=user,
        jti=refresh.jti,
        token="",  # the bearer credential itself is never stored
        created_at=datetime.fromtimestamp(refresh.issued_at, tz=UTC),
        expires_at=datetime.fromtimestamp(refresh.expires_at, tz=UTC),
    )
    return TokenPair(access=access.token, refresh=refresh.token, expires_in=tokens.access_lifetime())


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


def token_refresh(*, refresh: str) -> TokenPair:
    """Rotate: blacklist ``refresh`` and issue a new pair, atomically; 401 if it was used or revoked."""
    claims = verify_token(refresh, token_type="refresh")
    try:
        with transaction.atomic():
            outstanding = _locked_outstanding(claims)
            if BlacklistedToken.objects.filter(token=outstanding).exists():
                REFRESH_REUSE.labels("polls").inc()
                record_auth_failure("refresh_reused")
                raise InvalidToken("The refresh token has been used or revoked.", reason="refresh_reused")
            BlacklistedToken.objects.create(token=outstanding)
            user = selectors.user_get_active(user_id=int(claims["sub"]))
            if user is None:
                raise InvalidToken("The account is disabled.")
            return token_pair_issue(user=user)
    except IntegrityError as exc:  # lost a race the row lock did not cover (e.g. SQLite)
        raise InvalidToken("The refresh token has been used or revoked.") from exc


def token_revoke(*, refresh: str) -> None:
    """Log out: blacklist ``refresh`` (idempotent). Access tokens stay valid until they expire."""
    claims = verify_token(refresh, token_type="refresh")
    with transaction.atomic():
        outstanding = _locked_outstanding(claims)
        BlacklistedToken.objects.get_or_create(token=outstanding)


def token_flush_expired() -> int:
    """Delete records of refresh tokens that have expired (a blacklist entry goes with its token)."""
    with transaction.atomic():
        deleted, _ = OutstandingToken.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
