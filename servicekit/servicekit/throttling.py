"""Brute-force protection: per client IP and per username budgets shared by every worker and instance.

A credential endpoint names its scope; the budgets come from ``SERVICEKIT["THROTTLE_RATES"]``
(``LOGIN_RATE_PER_IP``, ``LOGIN_RATE_PER_USERNAME``, ``REGISTER_RATE_PER_IP``,
``REGISTER_RATE_PER_USERNAME``; ``"10/min"``, ``"100/hour"``, or ``"off"``)::

    from servicekit.throttling import CredentialThrottle

    class TokenView(APIView):
        throttle_classes = [CredentialThrottle]
        throttle_scope = "login"          # counts "login.ip" and "login.username"

Every attempt counts, successful or not. A budget is a window that starts at the first attempt and
lasts the rate's period; counters live in Redis (``SET NX EX`` + ``INCR`` in one transaction) when
the cache is django-redis, so the budget holds across web workers and hosts; otherwise the
Django cache's ``add``/``incr``. Excess requests get 429 problem+json with ``Retry-After``.

The client IP is ``REMOTE_ADDR`` unless the request came from a trusted proxy (``TRUSTED_PROXIES``,
addresses or networks; default the loopback gateway), in which case it is the right-most address in
``X-Forwarded-For`` that is not a trusted proxy (or ``X-Real-IP``): a spoofed header buys nothing.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import ipaddress
import logging
from typing import Any

from django.core.cache import cache, caches
from prometheus_client import Counter
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from servicekit.conf import servicekit_settings
from servicekit.throttle_rates import PRODUCTION_THROTTLE_RATES
from servicekit.throttle_rates import parse_rate as parse_rate  # re-exported: where the rate syntax used to live

logger = logging.getLogger(__name__)

THROTTLED = Counter(
    "throttled_requests_total",
    "Requests refused with 429 by a credential budget, by scope (login, register) and reason (ip, username).",
    ["service", "scope", "reason"],
)

servicekit_settings.register_defaults(
    {"TRUSTED_PROXIES": ("127.0.0.1", "::1"), "THROTTLE_RATES": dict(PRODUCTION_THROTTLE_RATES)}
)


@functools.lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in trusted)


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def is_trusted_proxy(address: str, trusted: tuple[str, ...] | None = None) -> bool:
    """Whether ``address`` is one of the configured trusted proxies."""
    ip = _parse_ip(address)
    if ip is None:
        return False
    networks = _networks(tuple(trusted if trusted is not None else servicekit_settings.TRUSTED_PROXIES))
    return any(ip in network for network in networks)


def client_ip(request: Any) -> str:
    """The address of the client, honouring forwarding headers only from trusted proxies."""
    meta = request.META
    remote = meta.get("REMOTE_ADDR", "") or ""
    if not is_trusted_proxy(remote):
        return remote
    forwarded = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(forwarded):
        ip = _parse_ip(hop)
        if ip is None:
            return remote  # malformed before any untrusted hop: nothing to believe
        if not is_trusted_proxy(str(ip)):
            return str(ip)
    if forwarded:
        ip = _parse_ip(forwarded[0])
        return str(ip) if ip is not None else remote
    real = _parse_ip(meta.get("HTTP_X_REAL_IP", ""))
    return str(real) if real is not None else remote


def _redis() -> Any:
    """The raw Redis client behind the default cache, or None when the cache is not django-redis."""
    backend = caches["default"]  # the backend itself: ``cache`` is a proxy whatever the backend
    if "redis" not in type(backend).__module__.lower():
        return None
    try:
        from django_redis import get_redis_connection
    except ImportError:  # pragma: no cover - django-redis is in base requirements
        return None
    return get_redis_connection("default")


def hit(key: str, limit: int, period: int) -> tuple[bool, int]:
    """Count one attempt against ``key``; ``(allowed, seconds until the window resets)``.

    Atomic across processes: Redis ``SET NX EX`` and ``INCR`` in one MULTI/EXEC, so the window
    starts at the first attempt and the count never loses an increment.
    """
    full_key = cache.make_key(f"throttle:{key}")
    client = _redis()
    if client is not None:
        pipe = client.pipeline(transaction=True)
        pipe.set(full_key, 0, ex=period, nx=True)  # the window starts with the first attempt
        pipe.incr(full_key)
        pipe.ttl(full_key)
        _, count, ttl = pipe.execute()
        if ttl is None or ttl < 0:  # the key expired between SET and INCR: give the new window its end
            client.expire(full_key, period)
            ttl = period
        return count <= limit, max(int(ttl), 1)
    cache.add(f"throttle:{key}", 0, timeout=period)
    try:
        count = cache.incr(f"throttle:{key}")
    except ValueError:  # expired between add and incr
        cache.add(f"throttle:{key}", 1, timeout=period)
        count = 1
    return count <= limit, period


def reset(key: str) -> None:
    """Forget the counter of ``key`` (tests, an operator unlocking an account)."""
    cache.delete(f"throttle:{key}")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def normalize_username(value: Any) -> str:
    """The username a budget is kept for: trimmed and case-folded (usernames are case-insensitive)."""
    return value.strip().casefold() if isinstance(value, str) else ""


class CredentialThrottle(BaseThrottle):
    """DRF throttle for credential endpoints: ``<scope>.ip`` and ``<scope>.username`` budgets.

    The view sets ``throttle_scope`` ("login", "register"); the username is read from the JSON body.
    The IP budget is checked first; an attempt refused by it does not spend the username's budget.
    """

    def __init__(self) -> None:
        self._wait: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        scope = getattr(view, "throttle_scope", None)
        if not scope:
            return True
        rates = servicekit_settings.THROTTLE_RATES
        checks = [(f"{scope}.ip", client_ip(request))]
        data = request.data if isinstance(request.data, dict) else {}
        username = normalize_username(data.get("username"))
        if username:
            checks.append((f"{scope}.username", username))
        for rate_name, identity in checks:
            rate = parse_rate(rates.get(rate_name))
            if rate is None:
                continue
            try:
                allowed, reset_in = hit(f"{rate_name}:{_digest(identity)}", *rate)
            except Exception:  # the store is down: fail open rather than lock everybody out
                logger.warning("throttle store unavailable", extra={"scope": rate_name}, exc_info=True)
                continue
            if not allowed:
                self._wait = reset_in
                with contextlib.suppress(Exception):
                    THROTTLED.labels(servicekit_settings.SERVICE_NAME, *rate_name.split(".", 1)).inc()
                return False
        return True

    def wait(self) -> float | None:
        return self._wait
