"""Service identity: every internal call carries a short-lived token signed by the calling service's own key.

There is no shared secret between services. Each service holds its own RSA key and every service knows
the public keys of all of them::

    SERVICE_PRIVATE_KEY / SERVICE_PRIVATE_KEY_FILE   this service's key (dev: RUN_DIR/secrets/service_keys/<name>.pem)
    SERVICE_PUBLIC_KEYS                              {"polls": PEM bundle, "choices": ..., "votes": ...}
                                                     (dev: the files <name>.pub.pem beside the private keys)

A call from choice_service to polls_service carries ``Authorization: Service <JWT>``
(``servicekit.service_tokens``): RS256, ``kid`` = the key's RFC 7638 thumbprint, ``iss`` = ``sub`` =
``"choices"``, ``aud`` = ``"polls"``, ``iat``, ``exp`` (``SERVICE_TOKEN_SECONDS``, 60 s), ``jti``,
``token_type`` = ``"service"``. The caller mints one per audience and reuses it until shortly before it
expires (``outgoing_token``).

The called service (``ServiceAuthentication``) accepts it only if the ``kid`` is a key of the service the
token names as its issuer, the signature verifies, ``aud`` is itself, and the token is current and
short-lived (at most ``MAX_LIFETIME_SECONDS``). ``request.user`` is then a ``ServicePrincipal`` named after
the caller, and every internal endpoint names who may call it (``InternalAPIView.callers``, checked by
``servicekit.permissions.IsService``): a credential stolen from choice_service is refused by every
endpoint choice_service has no business with, and by every service for which it was not minted.

Keys rotate like the user-token keys: add the new public key to the service's bundle everywhere, switch
that service's private key, and drop the old public key once the last token it signed has expired (a
minute later).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from servicekit import jwks
from servicekit.auth import InvalidToken, record_auth_failure, verified_jws
from servicekit.conf import servicekit_settings
from servicekit.memo import Memo
from servicekit.principal import SERVICES
from servicekit.service_tokens import SCHEME, TOKEN_TYPE, mint

servicekit_settings.register_defaults(
    {
        "SERVICE_PRIVATE_KEY": "",
        "SERVICE_PRIVATE_KEY_FILE": "",
        # {service name: PEM bundle of its public keys}; SERVICE_KEYS_DIR/<name>.pub.pem fills the gaps.
        "SERVICE_PUBLIC_KEYS": {},
        "SERVICE_KEYS_DIR": "",
        "SERVICE_TOKEN_SECONDS": 60,
    }
)

# A service token is a bearer credential: a longer-lived one is refused even when correctly signed.
MAX_LIFETIME_SECONDS = 300
LEEWAY_SECONDS = 30
# A cached outgoing token is replaced this long before it expires (a slow call must not arrive late).
RENEW_BEFORE_SECONDS = 15
REQUIRED_CLAIMS = ("iss", "sub", "aud", "iat", "exp", "jti")


class InvalidServiceCredential(InvalidToken):
    """A service token that is malformed, forged, expired, or minted for another service (401)."""

    default_detail = "The service credential is invalid."
    default_code = "invalid-service-credential"


@dataclass(frozen=True)
class ServiceKeys:
    """This service's signing key (if any) and every trusted service key: ``kid`` → (service, key)."""

    own_kid: str
    own_key: rsa.RSAPrivateKey | None
    trusted: dict[str, tuple[str, rsa.RSAPublicKey]]


def public_key_bundles() -> dict[str, str]:
    """The PEM bundle of each service's public keys: ``SERVICE_PUBLIC_KEYS``, else the key directory's files."""
    configured = servicekit_settings.SERVICE_PUBLIC_KEYS or {}
    folder = servicekit_settings.SERVICE_KEYS_DIR
    bundles: dict[str, str] = {}
    for name in SERVICES:
        bundle = configured.get(name) or (jwks.read_file(Path(folder) / f"{name}.pub.pem") if folder else "")
        if bundle:
            bundles[name] = bundle
    return bundles


def _load() -> ServiceKeys:
    trusted: dict[str, tuple[str, rsa.RSAPublicKey]] = {}
    for name, bundle in public_key_bundles().items():
        for kid, key in jwks.load_public_keys(bundle).items():
            trusted[kid] = (name, key)
    pem = servicekit_settings.SERVICE_PRIVATE_KEY or jwks.read_file(servicekit_settings.SERVICE_PRIVATE_KEY_FILE)
    if not pem:
        return ServiceKeys(own_kid="", own_key=None, trusted=trusted)
    own = jwks.load_private_key(pem)
    return ServiceKeys(own_kid=jwks.thumbprint(own.public_key()), own_key=own, trusted=trusted)


_keys: ServiceKeys | None = None
_lock = threading.Lock()
# Outgoing tokens by audience, and incoming tokens already verified (a caller reuses its token for a minute).
_outgoing: dict[str, tuple[str, float]] = {}
_verified: Memo[str, tuple[str, float]] = Memo(256)


def service_keys() -> ServiceKeys:
    """This process's service keys, loaded on first use (and again after a ``SERVICEKIT`` change)."""
    global _keys
    if _keys is None:
        with _lock:
            if _keys is None:
                _keys = _load()
    return _keys


def reset() -> None:
    """Forget loaded keys and cached tokens (tests, key rotation in a running process)."""
    global _keys
    with _lock:
        _keys = None
        _outgoing.clear()
        _verified.clear()


def _reset_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "SERVICEKIT":
        reset()


setting_changed.connect(_reset_on_settings_change)


# --- The caller ------------------------------------------------------------------------------------------


def outgoing_token(audience: str) -> str:
    """This service's token for calls to ``audience``, minted once per ``SERVICE_TOKEN_SECONDS`` or so."""
    now = time.time()
    cached = _outgoing.get(audience)
    if cached is not None and cached[1] - RENEW_BEFORE_SECONDS > now:
        return cached[0]
    keys = service_keys()
    if keys.own_key is None:
        raise ImproperlyConfigured(
            "This service has no service key (SERVICE_PRIVATE_KEY or SERVICE_PRIVATE_KEY_FILE): "
            f"it cannot call {audience}."
        )
    lifetime = min(int(servicekit_settings.SERVICE_TOKEN_SECONDS), MAX_LIFETIME_SECONDS)
    token = mint(
        caller=servicekit_settings.SERVICE_NAME, audience=audience, private_key=keys.own_key, lifetime=lifetime, now=now
    )
    _outgoing[audience] = (token, now + lifetime)
    return token


def authorization(audience: str) -> str:
    """The ``Authorization`` header value of a call to ``audience``."""
    return f"{SCHEME} {outgoing_token(audience)}"


# --- Verification (the called service) -------------------------------------------------------------------


def verify(token: str) -> str:
    """The name of the service that sent ``token`` to this one, or ``InvalidServiceCredential``."""
    now = time.time()
    cached = _verified.get(token)
    if cached is not None:
        if cached[1] + LEEWAY_SECONDS > now:
            return cached[0]
        _verified.pop(token, None)
    trusted = service_keys().trusted
    owners: dict[str, str] = {}

    def key_of(kid: str) -> rsa.RSAPublicKey | None:
        found = trusted.get(kid)
        if found is None:
            return None
        owners[kid] = found[0]
        return found[1]

    try:
        payload, kid, _ = verified_jws(token, key_of)
    except InvalidToken as exc:
        raise InvalidServiceCredential(reason=f"service_{exc.reason}") from exc
    caller, _ = _verified.remember(token, _checked_claims(payload, owner=owners[kid], now=now))
    return caller


def _checked_claims(payload: bytes, *, owner: str, now: float) -> tuple[str, float]:
    try:
        claims = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise InvalidServiceCredential(reason="service_malformed") from exc
    if not isinstance(claims, dict) or any(claims.get(name) is None for name in REQUIRED_CLAIMS):
        raise InvalidServiceCredential(reason="service_malformed")
    issued, expires = claims["iat"], claims["exp"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (issued, expires)):
        raise InvalidServiceCredential(reason="service_malformed")
    # The key decides who is calling: a token naming another service than its key's owner is forged.
    if claims["iss"] != owner or claims["sub"] != owner or claims.get("token_type") != TOKEN_TYPE:
        raise InvalidServiceCredential(reason="service_wrong_issuer")
    if claims["aud"] != servicekit_settings.SERVICE_NAME:
        raise InvalidServiceCredential(
            "The service credential was issued for another service.", reason="service_wrong_audience"
        )
    if expires - issued > MAX_LIFETIME_SECONDS:
        raise InvalidServiceCredential("The service credential lives too long.", reason="service_lifetime")
    if expires + LEEWAY_SECONDS <= now:
        raise InvalidServiceCredential("The service credential has expired.", reason="service_expired")
    if issued - LEEWAY_SECONDS > now:
        raise InvalidServiceCredential(reason="service_not_yet_valid")
    return owner, float(expires)


class ServicePrincipal:
    """``request.user`` of an internal call: the calling service, authenticated by its own key."""

    id = None
    pk = None
    roles: frozenset[str] = frozenset({"service"})
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_operator = False
    is_staff = False
    is_service = True

    def __init__(self, name: str):
        self.name = name
        self.username = f"service:{name}"

    def __str__(self) -> str:
        return self.username

    def __repr__(self) -> str:
        return f"<ServicePrincipal {self.name}>"


class ServiceAuthentication(BaseAuthentication):
    """DRF authentication for ``/internal/`` endpoints: ``Authorization: Service <service token>`` only."""

    def authenticate(self, request: Request) -> tuple[ServicePrincipal, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, credential = header.partition(" ")
        try:
            if scheme != SCHEME or not credential.strip():
                raise InvalidServiceCredential(reason="service_credential")
            caller = verify(credential.strip())
        except InvalidServiceCredential as exc:
            record_auth_failure(exc.reason)
            raise
        return ServicePrincipal(caller), TOKEN_TYPE

    def authenticate_header(self, request: Request) -> str:
        return f'{SCHEME} realm="internal"'
