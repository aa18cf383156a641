"""Threat detection with response: sliding-window rules in Redis that write ``threat.*`` audit entries and block.

Rules (``SERVICEKIT`` keys; each from the environment variable of the same name; a rate is
``"<count>/<window>"`` as in ``servicekit.throttling.parse_rate``, e.g. ``"20/10m"``, or ``"off"``):

- ``credential_stuffing``: ``DETECT_CREDENTIAL_STUFFING`` distinct usernames fail to log in from one
  client address within the window → that address may not log in for ``DETECT_LOGIN_BLOCK_SECONDS``.
- ``brute_force``: ``DETECT_BRUTE_FORCE`` failed logins on one username (from any address) within the
  window, attempts refused by the credential budget included (``login_throttled``) → that username may
  not log in for ``DETECT_LOGIN_BLOCK_SECONDS``.
- ``forbidden_burst``: ``DETECT_FORBIDDEN_BURST`` 403s answered to one user within the window (object
  enumeration) → that user's requests to this service get 429 for ``DETECT_USER_BLOCK_SECONDS``.
- ``refresh_reuse``: each rotated or revoked refresh token presented again → the issuer revokes every
  refresh token of the user (the whole family, the rotated-in one included: all their sessions).
- ``unknown_key``: each token naming a key this service does not know → the 401, and the alert.

Only *failures* count: the many successful registrations and logins a test suite (or an office behind one
NAT) makes from one address never add up. Each firing writes ``threat.<rule>`` to the audit trail and
increments ``security_threats_detected_total{service,kind}``; a rule fires once per window and key
(one alert per attack, not per attempt). Blocked requests are answered 429 problem+json with
``Retry-After``, like the credential throttle.

Counters are Redis sorted sets (member = the attempt, score = its time) trimmed to the window on each
hit, so the window slides. When the cache is not django-redis (the embedded development defaults) the
same logic runs on the Django cache, per process. When Redis is down, detection fails open: nothing is
counted and nobody is blocked.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from typing import Any

from django.core.cache import cache
from prometheus_client import Counter
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from servicekit import audit
from servicekit.conf import servicekit_settings
from servicekit.env import env
from servicekit.throttling import _redis, client_ip, normalize_username, parse_rate

logger = logging.getLogger(__name__)

THREATS = Counter(
    "security_threats_detected_total",
    "Attacks recognised by a detection rule (servicekit.detection), by kind.",
    ["service", "kind"],
)

CREDENTIAL_STUFFING = "credential_stuffing"
BRUTE_FORCE = "brute_force"
FORBIDDEN_BURST = "forbidden_burst"
REFRESH_REUSE = "refresh_reuse"
UNKNOWN_KEY = "unknown_key"

_production = env.str("DJANGO_ENV", default="development") == "production"
# Development (make up, the test stack, unit suites) allows more: every test comes from 127.0.0.1, and the
# credential budgets' own tests must see the budget answer first (LOGIN_RATE_PER_USERNAME is 30/min there).
servicekit_settings.register_defaults(
    {
        "DETECT_CREDENTIAL_STUFFING": env.str(
            "DETECT_CREDENTIAL_STUFFING", default="20/10m" if _production else "1000/10m"
        ),
        "DETECT_BRUTE_FORCE": env.str("DETECT_BRUTE_FORCE", default="10/15m" if _production else "40/15m"),
        "DETECT_FORBIDDEN_BURST": env.str("DETECT_FORBIDDEN_BURST", default="30/1m" if _production else "60/1m"),
        "DETECT_LOGIN_BLOCK_SECONDS": env.int("DETECT_LOGIN_BLOCK_SECONDS", default=900),
        "DETECT_USER_BLOCK_SECONDS": env.int("DETECT_USER_BLOCK_SECONDS", default=300),
    }
)

THROTTLED_AUDIT_SECONDS = 60

_SETTING = {
    CREDENTIAL_STUFFING: "DETECT_CREDENTIAL_STUFFING",
    BRUTE_FORCE: "DETECT_BRUTE_FORCE",
    FORBIDDEN_BURST: "DETECT_FORBIDDEN_BURST",
}


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _key(*parts: str) -> str:
    return cache.make_key("detect:" + ":".join(parts))


# --- Sliding windows ---------------------------------------------------------------------------------


def _count_in_window(key: str, member: str, window: int) -> int:
    """Add ``member`` to the window at ``key`` and return how many distinct members it holds now."""
    now = time.time()
    client = _redis()
    if client is not None:
        pipe = client.pipeline(transaction=True)
        pipe.zadd(key, {member: now})
        pipe.zremrangebyscore(key, "-inf", now - window)
        pipe.zcard(key)
        pipe.expire(key, window)
        return int(pipe.execute()[2])
    seen: dict[str, float] = cache.get(key) or {}
    seen = {m: t for m, t in seen.items() if t > now - window}
    seen[member] = now
    cache.set(key, seen, timeout=window)
    return len(seen)


def _fire_once(kind: str, subject: str, window: int) -> bool:
    """True the first time ``kind`` fires for ``subject`` within ``window`` (one alert per attack)."""
    client = _redis()
    key = _key("fired", kind, _digest(subject))
    if client is not None:
        return bool(client.set(key, 1, ex=window, nx=True))
    return bool(cache.add(key, 1, timeout=window))


def block(kind: str, subject: str, seconds: int) -> None:
    """Refuse ``subject`` (an address, a username, a user id) under ``kind`` for ``seconds``."""
    cache.set(f"detect:block:{kind}:{_digest(subject)}", int(time.time()) + seconds, timeout=seconds)


def blocked_for(kind: str, subject: str) -> int:
    """Seconds ``subject`` stays blocked under ``kind`` (0: not blocked). Fails open."""
    try:
        until = cache.get(f"detect:block:{kind}:{_digest(subject)}")
    except Exception:
        logger.warning("detection store unavailable", exc_info=True)
        return 0
    if not until:
        return 0
    return max(int(until) - int(time.time()), 1)


def unblock(kind: str, subject: str) -> None:
    """Lift a block early (an operator, a test)."""
    cache.delete(f"detect:block:{kind}:{_digest(subject)}")


def _threat(kind: str, *, request: Any, actor: Any, detail: dict[str, Any]) -> None:
    try:
        THREATS.labels(servicekit_settings.SERVICE_NAME, kind).inc()
    except Exception:
        logger.exception("could not count a threat")
    audit.record(f"threat.{kind}", request=request, actor=actor, outcome=audit.DETECTED, detail=detail)


def _rule(kind: str) -> tuple[int, int] | None:
    return parse_rate(getattr(servicekit_settings, _SETTING[kind]))


# --- Rules ------------------------------------------------------------------------------------------


def _enforce(
    rule: str,
    subject: str,
    count: int,
    limit: int,
    window: int,
    cooldown: int,
    request: Any,
    counted: str,
    *,
    actor: Any = None,
) -> None:
    """``count`` events of ``rule`` for ``subject`` in ``window`` seconds: at ``limit`` the subject is blocked
    for ``cooldown`` seconds, and the threat is recorded once per window (detail ``{counted: count, ...}``)."""
    if count < limit:
        return
    block(rule, subject, cooldown)
    if _fire_once(rule, subject, window):
        detail = {counted: count, "window_seconds": window, "blocked_seconds": cooldown}
        _threat(rule, request=request, actor=actor, detail=detail)


def login_failed(request: Any, *, username: str) -> None:
    """Count a failed login: credential stuffing per address, brute force per username; block when they fire."""
    name = normalize_username(username)
    address = client_ip(request)
    cooldown = int(servicekit_settings.DETECT_LOGIN_BLOCK_SECONDS)
    try:
        stuffing = _rule(CREDENTIAL_STUFFING)
        if stuffing is not None and address:
            limit, window = stuffing
            distinct = _count_in_window(_key("stuffing", _digest(address)), _digest(name), window)
            _enforce(CREDENTIAL_STUFFING, address, distinct, limit, window, cooldown, request, "usernames")
        if name:
            _count_brute_force(request, name)
    except Exception:  # the store is down: fail open
        logger.warning("detection store unavailable", extra={"rule": "login"}, exc_info=True)


def _count_brute_force(request: Any, name: str) -> None:
    brute = _rule(BRUTE_FORCE)
    if brute is None:
        return
    limit, window = brute
    cooldown = int(servicekit_settings.DETECT_LOGIN_BLOCK_SECONDS)
    try:
        failures = _count_in_window(_key("brute", _digest(name)), uuid.uuid4().hex, window)
        _enforce(BRUTE_FORCE, name, failures, limit, window, cooldown, request, "failures", actor=name)
    except Exception:  # the store is down: fail open
        logger.warning("detection store unavailable", extra={"rule": BRUTE_FORCE}, exc_info=True)


def login_throttled(request: Any) -> int:
    """A login was refused by a throttle: the seconds its address or username stays blocked by a rule, or 0.

    A refusal by the credential budget (``CredentialThrottle``) alone counts as a failed attempt:
    hammering an account past its budget is brute force. Refusals of a blocked caller are not counted."""
    blocked = int(getattr(request, "_detection_blocked", 0) or 0)  # LoginBlockThrottle looked it up already
    data = request.data if isinstance(request.data, dict) else {}
    name = normalize_username(data.get("username"))
    if not blocked and name:
        # Only the account's count: one Redis round trip per refusal (a flood of them is the usual case).
        _count_brute_force(request, name)
    return blocked


def forbidden(request: Any, *, user_id: Any, username: str = "") -> None:
    """Count a 403 answered to ``user_id``; a burst blocks that user's requests on this service."""
    rule = _rule(FORBIDDEN_BURST)
    if rule is None or user_id is None:
        return
    limit, window = rule
    subject = str(user_id)
    try:
        denials = _count_in_window(_key("forbidden", _digest(subject)), uuid.uuid4().hex, window)
        cooldown = int(servicekit_settings.DETECT_USER_BLOCK_SECONDS)
        _enforce(FORBIDDEN_BURST, subject, denials, limit, window, cooldown, request, "denials")
    except Exception:
        logger.warning("detection store unavailable", extra={"rule": FORBIDDEN_BURST}, exc_info=True)


def refresh_reused(request: Any, *, actor: Any, revoked: int) -> None:
    """A refresh token came back after rotation or logout; the caller has revoked ``revoked`` tokens."""
    _threat(REFRESH_REUSE, request=request, actor=actor, detail={"revoked": revoked})


def unknown_key(request: Any, *, kid: str | None = None) -> None:
    """A token named a key this service does not know: forged, or signed by a key never published."""
    _threat(UNKNOWN_KEY, request=request, actor=None, detail={"kid": (kid or "")[:100]})


def _unverified_kid(request: Any) -> str:
    """The ``kid`` a refused bearer token claimed (for the entry only; never used to verify anything)."""
    import jwt

    _, _, credential = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    try:
        kid = jwt.get_unverified_header(credential.strip()).get("kid")
    except Exception:
        return ""
    return kid[:100] if isinstance(kid, str) else ""


def refused(exc: Any, request: Any) -> None:
    """Called by the problem+json exception handler for 401/403/429: audit and feed the detection rules.

    403 → ``access.denied`` (and the 403-burst rule), 429 → ``access.throttled``, a token naming an
    unknown key → ``token.unknown_key`` (and ``threat.unknown_key``). Other 401s are the credential
    views' to describe (``auth.login`` failures) or routine (an expired token).
    """
    try:
        if exc.status_code == 403:
            audit.record(
                "access.denied", request=request, outcome=audit.DENIED, detail={"detail": str(exc.detail)[:200]}
            )
            actor = request.__dict__.get("_user")
            if getattr(actor, "is_authenticated", False) and not getattr(actor, "is_service", False):
                forbidden(request, user_id=getattr(actor, "id", None))
        elif exc.status_code == 429:
            # A flood of refusals must not become a flood of inserts: the first per caller and path each
            # minute is written (throttled_requests_total and the access log count every one).
            actor = request.__dict__.get("_user")
            caller = str(getattr(actor, "id", None) or client_ip(request))
            if _fire_once("throttled", f"{caller} {request.path}", THROTTLED_AUDIT_SECONDS):
                code = getattr(exc, "default_code", "throttled")
                audit.record("access.throttled", request=request, outcome=audit.THROTTLED, detail={"reason": str(code)})
        elif getattr(exc, "reason", None) == "unknown_key":
            kid = _unverified_kid(request)
            audit.record("token.unknown_key", request=request, outcome=audit.FAILURE, detail={"kid": kid})
            unknown_key(request, kid=kid)
    except Exception:  # observability degrades, never crashes
        logger.exception("could not audit a refused request")


# --- Responses --------------------------------------------------------------------------------------


class Blocked(exceptions.Throttled):
    """429 for a caller a detection rule has blocked; ``Retry-After`` says when it ends."""

    default_detail = "Too many failed or refused attempts; try again later."
    default_code = "blocked"

    def __init__(self, wait: int):
        super().__init__(wait=wait, detail=f"{self.default_detail} Retry in {wait} seconds.")


class LoginBlockThrottle(BaseThrottle):
    """DRF throttle for the login view: refuses an address or a username that a login rule blocked."""

    def __init__(self) -> None:
        self._wait: int | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        data = request.data if isinstance(request.data, dict) else {}
        name = normalize_username(data.get("username"))
        self._wait = max(
            blocked_for(CREDENTIAL_STUFFING, client_ip(request)), blocked_for(BRUTE_FORCE, name) if name else 0
        )
        request._detection_blocked = self._wait  # for the view's throttled() (login_throttled)
        return not self._wait

    def wait(self) -> float | None:
        return self._wait


def check_user_block(user_id: Any) -> None:
    """Raise ``Blocked`` when ``user_id`` is blocked on this service by the 403-burst rule."""
    if user_id is None or _rule(FORBIDDEN_BURST) is None:  # the rule off: no cache read per request
        return
    wait = blocked_for(FORBIDDEN_BURST, str(user_id))
    if wait:
        raise Blocked(wait)
