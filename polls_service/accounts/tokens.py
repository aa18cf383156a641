"""Minting RS256 tokens with the issuer's key (servicekit.auth's keyring holds it, loaded once).

Claims: ``iss``, ``aud``, ``iat``, ``exp``, ``jti``, ``sub`` (user id as a string), ``username``,
``roles``, ``joined`` (the account's creation time: voter policies), ``token_type`` ("access" or
"refresh") and ``sgen`` (the user's session generation, ``servicekit.sessions``: revoking sessions
refuses every token of an older one); header ``kid``. Verification is
``servicekit.auth.verify_token`` -- the same code every service runs.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from django.contrib.auth.models import AbstractBaseUser

from servicekit import sessions
from servicekit.auth import ALGORITHM, keyring
from servicekit.conf import servicekit_settings
from servicekit.errors import ServiceUnavailable
from servicekit.principal import ROLE_OPERATOR, ROLE_USER


@dataclass(frozen=True)
class MintedToken:
    token: str
    jti: str
    issued_at: int
    expires_at: int


def roles_of(user: Any) -> list[str]:
    """``["user"]``, plus ``"operator"`` for Django staff (and superusers)."""
    return [ROLE_USER, ROLE_OPERATOR] if (user.is_staff or user.is_superuser) else [ROLE_USER]


def _sign(subject: dict[str, Any], *, lifetime: int) -> MintedToken:
    """Sign the issuer's standard claims plus ``subject``'s, valid ``lifetime`` seconds from now."""
    signing = keyring().signing_key()
    if signing is None:
        raise ServiceUnavailable("Token signing is not configured on this service.", code="signing-key-missing")
    now = int(time.time())
    jti = uuid.uuid4().hex
    claims = {
        "iss": servicekit_settings.JWT_ISSUER,
        "aud": servicekit_settings.JWT_AUDIENCE,
        "iat": now,
        "exp": now + lifetime,
        "jti": jti,
        **subject,
    }
    token = jwt.encode(claims, signing.private_key, algorithm=ALGORITHM, headers={"kid": signing.kid, "typ": "JWT"})
    return MintedToken(token=token, jti=jti, issued_at=now, expires_at=now + lifetime)


def mint(user: AbstractBaseUser, *, token_type: str, lifetime: int, generation: int = 0) -> MintedToken:
    """Sign a token of ``token_type`` for ``user`` valid ``lifetime`` seconds, in session ``generation``."""
    return _sign(
        {
            "sub": str(user.pk),
            "username": user.get_username(),
            "roles": roles_of(user),
            # When the account was created: the account-age rule of voter policies (servicekit.voter_policy).
            "joined": int(user.date_joined.timestamp()),
            "token_type": token_type,
            sessions.CLAIM: generation,
        },
        lifetime=lifetime,
    )


def mint_client_token(*, client_id: str, scopes: list[str], lifetime: int) -> MintedToken:
    """An access token of a machine client (``client_credentials``): no user, its granted ``scope``.

    ``sub`` is ``client:<client_id>`` (never a user id); services accept it only where a view requires one
    of its scopes (``servicekit.auth.client_principal``).
    """
    subject = {"sub": f"client:{client_id}", "client_id": client_id, "scope": " ".join(scopes), "token_type": "access"}
    return _sign(subject, lifetime=lifetime)


def access_lifetime() -> int:
    """Seconds an access token lives (``JWT_ACCESS_MINUTES``, at most 15 minutes)."""
    return min(int(servicekit_settings.JWT_ACCESS_SECONDS), 15 * 60)


def refresh_lifetime() -> int:
    """Seconds a refresh token lives (``JWT_REFRESH_MINUTES``, default one day)."""
    return int(servicekit_settings.JWT_REFRESH_SECONDS)
