"""Stateless authentication for every service: RS256 access tokens.

``servicekit.settings`` makes JWT authentication the default for every DRF view, so a view only
chooses permissions::

    from servicekit.permissions import IsAuthenticated

    class PollDetail(APIView):
        permission_classes = [IsAuthenticated]
        def patch(self, request, ...):
            actor: Principal = request.user          # id, username, roles -- from the token alone
            poll_update(poll=..., actor=actor, ...)   # the service checks can_manage(actor, poll.owner_id)

Internal endpoints accept only a calling service's own signed token (``servicekit.service_identity``,
``servicekit.internal.InternalAPIView``).

Verification (``verify_token``) never touches a database: the algorithm is pinned to RS256, the key
is chosen by ``kid`` among the configured public keys (``JWT_PUBLIC_KEYS`` / ``JWT_PUBLIC_KEYS_FILE``,
plus the issuer's own key in polls_service) or a JWKS fetched from ``JWKS_URL`` (cached, refetched
on an unknown ``kid`` at most once per ``JWKS_REFETCH_SECONDS``); ``iss``, ``aud``, ``exp``, ``iat``,
``jti`` and ``sub`` are required and checked; ``jku``/``jwk``/``x5u``/``x5c`` headers, any ``crit``
extension and header parameters joserfc does not know are refused (keys are never taken from a
token). A token is parsed once (joserfc) and its signature checked by ``cryptography``. Every
failure is a 401 problem+json with ``WWW-Authenticate: Bearer``. ``JWTAuthentication`` also refuses
a token from a revoked session (``servicekit.sessions``: a per-user generation held in memory, no
database read on the request).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.signals import setting_changed
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from joserfc.jws import JWSRegistry
from prometheus_client import Counter
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from servicekit import detection, jwks, sessions
from servicekit.conf import servicekit_settings
from servicekit.logging import bind_user
from servicekit.memo import Memo
from servicekit.principal import ROLE_OPERATOR, ROLE_USER, ClientPrincipal, Principal

logger = logging.getLogger(__name__)

servicekit_settings.register_defaults(
    {
        "JWT_ISSUER": "polls-platform",
        "JWT_AUDIENCE": "polls-platform-api",
        "JWT_PUBLIC_KEYS": "",
        "JWT_PUBLIC_KEYS_FILE": "",
        "JWT_PRIVATE_KEY": "",
        "JWT_PRIVATE_KEY_FILE": "",
        "JWT_KEY_ID": "",
        "JWT_LEEWAY_SECONDS": 30,
        "JWKS_URL": "",
        # How long a fetched JWKS is trusted, and how often an unknown kid may trigger a refetch.
        "JWKS_CACHE_SECONDS": 300,
        "JWKS_REFETCH_SECONDS": 30,
        "JWKS_TIMEOUT_SECONDS": 1.0,
        # Token lifetimes (the issuer, polls_service, sets them from JWT_ACCESS_MINUTES / JWT_REFRESH_MINUTES).
        "JWT_ACCESS_SECONDS": 300,
        "JWT_REFRESH_SECONDS": 86400,
    }
)

ALGORITHM = "RS256"
KNOWN_ROLES = frozenset({ROLE_USER, ROLE_OPERATOR})
# Headers that would let a token choose its own verification key; never honoured.
FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c"})
MAX_TOKEN_LENGTH = 8192
MAX_KID_LENGTH = 128


AUTH_FAILURES = Counter(
    "auth_failures_total",
    "Credentials refused (tokens, service credentials, passwords), by reason.",
    ["service", "reason"],
)


def record_auth_failure(reason: str) -> None:
    """Count one refused credential (``auth_failures_total``); never raises."""
    try:
        AUTH_FAILURES.labels(servicekit_settings.SERVICE_NAME, reason).inc()
    except Exception:
        logger.exception("could not record an authentication failure")


class InvalidToken(exceptions.AuthenticationFailed):
    """A token that is malformed, forged, expired or of the wrong kind (401).

    ``reason`` is a short, fixed label for metrics (``malformed``, ``expired``, ``bad_signature``...).
    """

    default_detail = "The access token is invalid or expired."
    default_code = "invalid-token"

    def __init__(self, detail: str | None = None, *, reason: str = "invalid_claims"):
        super().__init__(detail=detail or self.default_detail, code=self.default_code)
        self.problem_code = self.default_code
        self.reason = reason


# --- Keys ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """The issuer's private key and the ``kid`` its tokens carry."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()


class KeyRing:
    """The public keys this process trusts, loaded once; a JWKS from ``JWKS_URL`` fills in unknown kids.

    Thread-safe (gthread workers share it); one instance per process via ``keyring()``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._static: dict[str, rsa.RSAPublicKey] | None = None
        self._signing: SigningKey | None = None
        self._signing_loaded = False
        self._remote: dict[str, rsa.RSAPublicKey] = {}
        self._remote_fetched_at = float("-inf")
        self._last_fetch_attempt = float("-inf")

    # Configured keys ----------------------------------------------------------------------------------
    def signing_key(self) -> SigningKey | None:
        """The issuer's signing key (polls_service), or None where no private key is configured."""
        if not self._signing_loaded:
            with self._lock:
                if not self._signing_loaded:
                    self._signing = _load_signing_key()
                    self._signing_loaded = True
        return self._signing

    def configured_keys(self) -> dict[str, rsa.RSAPublicKey]:
        """Public keys from settings (bundle or file) plus the issuer's own public key, by kid."""
        if self._static is None:
            signing = self.signing_key()
            with self._lock:
                if self._static is None:
                    keys: dict[str, rsa.RSAPublicKey] = {}
                    if signing is not None:
                        keys[signing.kid] = signing.public_key
                    bundle = servicekit_settings.JWT_PUBLIC_KEYS or jwks.read_file(
                        servicekit_settings.JWT_PUBLIC_KEYS_FILE
                    )
                    for kid, key in jwks.load_public_keys(bundle).items():
                        keys.setdefault(kid, key)
                    self._static = keys
        return self._static

    def published_keys(self) -> dict[str, rsa.RSAPublicKey]:
        """What ``/.well-known/jwks.json`` publishes: the signing key first, then the other configured keys."""
        return dict(self.configured_keys())

    # Lookup -------------------------------------------------------------------------------------------
    def get(self, kid: str) -> rsa.RSAPublicKey | None:
        """The key for ``kid``: configured keys first, then the (cached, rate-limited) remote JWKS."""
        key = self.configured_keys().get(kid)
        if key is not None:
            return key
        url = servicekit_settings.JWKS_URL
        if not url:
            return None
        now = time.monotonic()
        fresh = now - self._remote_fetched_at < servicekit_settings.JWKS_CACHE_SECONDS
        if fresh and kid in self._remote:
            return self._remote[kid]
        # An unknown kid or an expired cache refetches, but never more than once per JWKS_REFETCH_SECONDS:
        # a flood of made-up kids, or an issuer that is down, costs one request per interval.
        if now - self._last_fetch_attempt >= servicekit_settings.JWKS_REFETCH_SECONDS:
            self._refresh_remote(url, now)
        return self._remote.get(kid)

    def _refresh_remote(self, url: str, now: float) -> None:
        if not self._lock.acquire(timeout=servicekit_settings.JWKS_TIMEOUT_SECONDS):
            return
        try:
            if now - self._last_fetch_attempt < min(servicekit_settings.JWKS_REFETCH_SECONDS, 1):
                return  # another thread just fetched
            self._last_fetch_attempt = now
            response = requests.get(
                url,
                timeout=servicekit_settings.JWKS_TIMEOUT_SECONDS,
                allow_redirects=False,
                headers={"Accept": "application/json"},
            )
            response.raise_for_status()
            self._remote = jwks.parse_jwk_set(response.json())
            self._remote_fetched_at = time.monotonic()
        except (requests.RequestException, ValueError) as exc:
            # Keep the keys fetched before: a blip at the issuer must not log everybody out.
            logger.warning("jwks fetch failed", extra={"url": url, "error": type(exc).__name__})
        finally:
            self._lock.release()


def _load_signing_key() -> SigningKey | None:
    pem = servicekit_settings.JWT_PRIVATE_KEY or jwks.read_file(servicekit_settings.JWT_PRIVATE_KEY_FILE)
    if not pem:
        return None
    private_key = jwks.load_private_key(pem)
    kid = servicekit_settings.JWT_KEY_ID or jwks.thumbprint(private_key.public_key())
    return SigningKey(kid=kid, private_key=private_key)


_keyring: KeyRing | None = None
_keyring_lock = threading.Lock()


def keyring() -> KeyRing:
    """This process's ``KeyRing`` (created on first use; rebuilt when ``SERVICEKIT`` settings change)."""
    global _keyring
    if _keyring is None:
        with _keyring_lock:
            if _keyring is None:
                _keyring = KeyRing()
    return _keyring


def reset_keyring() -> None:
    """Forget loaded keys and verified tokens (tests, key rotation in a running process)."""
    global _keyring
    with _keyring_lock:
        _keyring = None
        _verified.clear()


def _reset_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "SERVICEKIT":
        reset_keyring()


setting_changed.connect(_reset_on_settings_change)


def preload_keys() -> None:
    """Load configured keys now, so that no request pays for it (for a process that serves requests next)."""
    try:
        keyring().configured_keys()
    except ValueError:
        logger.exception("jwt keys could not be loaded")


# --- Verification -------------------------------------------------------------------------------------


# Verified tokens by their exact text. A client sends the same access token for minutes; re-checking
# its signature every time costs most of the verification (parsing, RSA). A hit still re-checks time
# (exp/nbf with leeway), type and that its key is still trusted (rotation), and only a byte-identical
# token can hit, so a forged variant is always verified in full.
_verified: Memo[str, tuple[dict[str, Any], str, rsa.RSAPublicKey]] = Memo(4096)


def _still_valid(claims: dict[str, Any], kid: str, key: rsa.RSAPublicKey, token_type: str) -> bool:
    leeway = min(int(servicekit_settings.JWT_LEEWAY_SECONDS), 30)
    now = time.time()
    if claims["exp"] + leeway <= now:
        return False
    nbf = claims.get("nbf")
    if nbf is not None and nbf - leeway > now:
        return False
    return claims.get("token_type") == token_type and keyring().get(kid) is key


def verify_token(token: str, *, token_type: str = "access") -> dict[str, Any]:
    """The verified claims of ``token``, or ``InvalidToken``. Stateless: no database is read.

    ``token_type`` is ``"access"`` for API calls, ``"refresh"`` for the refresh/logout endpoints.
    """
    cached = _verified.get(token)
    if cached is not None:
        if _still_valid(*cached, token_type):
            return dict(cached[0])
        _verified.pop(token, None)
    claims, kid, key = _verified.remember(token, _verify_uncached(token, token_type))
    return dict(claims)


# The compact JWS is parsed once, by joserfc: strict base64url (canonical, no padding or stray
# characters, in C) and a JSON header; it verifies the signature with ``cryptography`` and refuses
# every algorithm but RS256 and any header parameter it does not know. PyJWT parsed each token twice
# (``get_unverified_header``, then ``decode``), each time checking every base64 character in a
# Python generator: ~150 us of a ~2 ms vote, against ~60 us here (measured).
_JWS_REGISTRY = JWSRegistry(algorithms=[ALGORITHM])
# Claims every access and refresh token carries (``token_type`` is checked on its own).
REQUIRED_CLAIMS = ("exp", "iat", "jti", "sub", "iss", "aud")


# joserfc's wrapper of each trusted key, made once per key: a wrapper made for each token computes the
# key's JWK form (base64 of its 2048-bit modulus) again for every verification (~10 us of ~45 us, measured).
# Keyed by kid, holding the key it wraps: a key fetched anew under a known kid gets a new wrapper. It holds
# no more entries than the keys this process ever trusted; a key no longer trusted never reaches it.
_jose_keys: dict[str, tuple[rsa.RSAPublicKey, RSAKey]] = {}


def _jose_key(kid: str, key: rsa.RSAPublicKey) -> RSAKey:
    held = _jose_keys.get(kid)
    if held is None or held[0] is not key:
        held = _jose_keys[kid] = (key, RSAKey.import_key(key))
    return held[1]


def _verify_uncached(token: str, token_type: str) -> tuple[dict[str, Any], str, rsa.RSAPublicKey]:
    payload, kid, key = verified_jws(token, keyring().get)
    return _checked_claims(payload, token_type), kid, key


def verified_jws(token: str, key_of: Callable[[str], rsa.RSAPublicKey | None]) -> tuple[bytes, str, rsa.RSAPublicKey]:
    """The payload of a compact RS256 JWS whose signature the trusted key ``key_of(kid)`` verifies, its
    ``kid`` and that key; ``InvalidToken`` otherwise. Claims are the caller's to check."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii() or token.count(".") != 2:
        raise InvalidToken("The token is malformed.", reason="malformed")
    try:
        signed = jws.extract_compact(token.encode("ascii"), registry=_JWS_REGISTRY)
    except (JoseError, ValueError, TypeError, RecursionError) as exc:
        raise InvalidToken("The token is malformed.", reason="malformed") from exc
    header = signed.headers()
    if not isinstance(header, dict):
        raise InvalidToken("The token is malformed.", reason="malformed")
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("The token's algorithm is not accepted.", reason="algorithm")
    if "crit" in header or "b64" in header:
        raise InvalidToken("The token requires extensions this service does not support.", reason="malformed")
    if FORBIDDEN_HEADERS.intersection(header):
        raise InvalidToken("The token names its own key; keys are never taken from a token.", reason="embedded_key")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
        raise InvalidToken("The token does not name a known key.", reason="unknown_key")
    key = key_of(kid)
    if key is None:
        raise InvalidToken("The token does not name a known key.", reason="unknown_key")
    try:
        valid = jws.validate_compact(signed, _jose_key(kid, key), registry=_JWS_REGISTRY)
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidToken(reason="bad_signature") from exc
    if not valid:
        raise InvalidToken(reason="bad_signature")
    return signed.payload, kid, key


def _checked_claims(payload: bytes, token_type: str) -> dict[str, Any]:
    """The claims of a token whose signature is good, or ``InvalidToken``: what PyJWT's ``decode``
    checked (required claims, ``iat``/``nbf``/``exp`` with leeway, ``iss`` exact, ``aud``), numbers
    that are numbers, and the platform's own rules (``token_type``, a non-empty ``jti``)."""
    try:
        claims = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise InvalidToken() from exc
    if not isinstance(claims, dict) or any(claims.get(name) is None for name in REQUIRED_CLAIMS):
        raise InvalidToken()
    if not all(_is_timestamp(claims[name]) for name in ("exp", "iat")) or not _is_timestamp(claims.get("nbf", 0)):
        raise InvalidToken()
    leeway = min(int(servicekit_settings.JWT_LEEWAY_SECONDS), 30)
    now = time.time()
    if claims["exp"] <= now - leeway:
        raise InvalidToken("The token has expired.", reason="expired")
    if claims["iat"] > now + leeway or claims.get("nbf", 0) > now + leeway:
        raise InvalidToken()
    # Exact comparison: a substring or superstring of the issuer is another issuer (CVE-2024-53861).
    if claims["iss"] != servicekit_settings.JWT_ISSUER:
        raise InvalidToken()
    audience = claims["aud"]
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or not all(isinstance(name, str) for name in audiences):
        raise InvalidToken()
    if servicekit_settings.JWT_AUDIENCE not in audiences:
        raise InvalidToken()
    if not isinstance(claims["sub"], str) or not isinstance(claims["jti"], str) or not claims["jti"]:
        raise InvalidToken()
    if claims.get("token_type") != token_type:
        raise InvalidToken(
            "An access token is required." if token_type == "access" else "A refresh token is required.",
            reason="wrong_type",
        )
    return claims


def _is_timestamp(value: Any) -> bool:
    # NaN or infinity would never expire (json.loads accepts both); a bool is not a time.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The ``Principal`` an access token describes; ``InvalidToken`` when its claims are not well-formed."""
    sub, username, roles = claims.get("sub"), claims.get("username"), claims.get("roles")
    if not isinstance(sub, str) or not sub.isdigit() or len(sub) > 19:
        raise InvalidToken()
    if not isinstance(username, str) or not username:
        raise InvalidToken()
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidToken()
    return Principal(id=int(sub), username=username, roles=frozenset(roles) & KNOWN_ROLES)


def client_principal(request: Request, claims: dict[str, Any]) -> ClientPrincipal:
    """The machine client of a ``client_credentials`` token, if the view requires a scope it holds.

    A view admits client tokens by naming a scope (``client_scope = "results:read"``); anywhere else, or
    without that scope, the token is a 403 ``insufficient_scope`` (RFC 6750 §3.1) whatever the view's
    permissions: a machine client never acts as a user.
    """
    client_id, scope = claims.get("client_id"), claims.get("scope", "")
    if not isinstance(client_id, str) or not client_id or not isinstance(scope, str):
        raise InvalidToken()
    principal = ClientPrincipal(client_id=client_id, scopes=frozenset(scope.split()))
    view = (getattr(request, "parser_context", None) or {}).get("view")
    required = getattr(view, "client_scope", None)
    if required is None or required not in principal.scopes:
        record_auth_failure("insufficient_scope")
        raise exceptions.PermissionDenied(
            f"This client's token does not grant {required}." if required else "Client tokens are not accepted here."
        )
    return principal


class AnonymousPrincipal:
    """``request.user`` when no credential was sent: not authenticated, no id, no roles."""

    id = None
    pk = None
    username = ""
    roles: frozenset[str] = frozenset()
    is_authenticated = False
    is_anonymous = True
    is_active = False
    is_operator = False
    is_staff = False

    def __str__(self) -> str:
        return "anonymous"

    def __bool__(self) -> bool:
        return False


class JWTAuthentication(BaseAuthentication):
    """DRF authentication: ``Authorization: Bearer <access token>`` → ``request.user`` = ``Principal``.

    Requests without an Authorization header (or with another scheme) stay anonymous; a Bearer
    credential that fails verification is a 401 even on endpoints that allow anonymous reads.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Principal | ClientPrincipal, dict[str, Any]] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        credential = credential.strip()
        try:
            if not credential or " " in credential:
                raise InvalidToken("The Authorization header must be 'Bearer <token>'.", reason="malformed")
            claims = verify_token(credential, token_type="access")
            if "client_id" in claims:
                return client_principal(request, claims), claims
            principal = principal_from_claims(claims)
            bind_user(principal.id)  # this request's log lines carry user.id from here on
            if sessions.revoked(user_id=principal.id, claims=claims):
                raise InvalidToken("The session has been revoked; log in again.", reason="revoked")
        except InvalidToken as exc:  # counted only when refused: nothing is added to an accepted request
            record_auth_failure(exc.reason)
            raise
        detection.check_user_block(principal.id)  # a 403 burst (object enumeration) blocks the user for a while
        return principal, claims

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'
