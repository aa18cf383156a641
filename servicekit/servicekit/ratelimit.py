"""Per-user token buckets (GCRA) shared in Redis by every instance and worker of a service.

A view names its route class; the budget comes from ``SERVICEKIT["THROTTLE_RATES"]["<class>.<key>"]``
(``servicekit.throttle_rates``: ``VOTE_RATE_PER_USER`` and friends)::

    from servicekit.ratelimit import rate_limited

    @rate_limited("vote")                      # POST/PUT/PATCH/DELETE; per user id, anonymous: per client IP
    class VoteViewSet(VersionedGenericViewSet): ...

    @rate_limited("token_refresh", key="ip")   # always per client IP
    class TokenRefreshView(APIView): ...

A budget reads ``"<count>/<period> burst <size>"``: ``"20/s burst 40"`` refills 20 tokens a second
into a bucket of 40 (so 40 at once, then 20 a second); ``"300/min"`` is a bucket of 300 refilled at
300 a minute; ``"off"`` (or empty) switches the class off. Every request of the class spends a token,
whatever its answer.

Answers carry the IETF httpapi ratelimit-headers (draft-10) fields: ``RateLimit-Policy: "vote";q=40;w=2``
(the bucket size and the seconds it takes to refill from empty) and ``RateLimit: "vote";r=17;t=1``
(tokens left, seconds until the bucket is full again). Refusals are 429 problem+json with
``Retry-After`` (whole seconds, at least 1) until the next token.

The bucket is one key per (route class, identity) holding the GCRA "theoretical arrival time"; one
Lua script reads Redis ``TIME`` (never a caller's clock: instances' clocks differ), decides and
updates atomically. redis-py's ``Script`` calls it by ``EVALSHA`` and loads it again on ``NOSCRIPT``
(a Redis restart or ``SCRIPT FLUSH``). Redis gets a short socket timeout (``RATE_LIMIT_TIMEOUT``):
when it is down or slow every process falls back to a local in-process bucket of the same budget
(fail open: a budget per process instead of a shared one), logs one warning per outage, counts
``rate_limit_store_failures_total`` and asks Redis again after ``RATE_LIMIT_RETRY_SECONDS``. Without
a Redis cache (embedded defaults) the local bucket is the only one.

The client IP is ``servicekit.throttling.client_ip``: a spoofed ``X-Forwarded-For`` buys nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.signals import setting_changed
from prometheus_client import Counter
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from servicekit import redis_direct
from servicekit.conf import servicekit_settings
from servicekit.throttle_rates import Budget, parse_budget
from servicekit.throttling import client_ip

logger = logging.getLogger(__name__)

RATE_LIMITED = Counter(
    "rate_limited_requests_total",
    "Requests refused with 429 by a token bucket, by service and route class.",
    ["service", "route_class"],
)
STORE_FAILURES = Counter(
    "rate_limit_store_failures_total",
    "Token-bucket decisions taken by the local fallback bucket because Redis failed or was skipped.",
    ["service"],
)

servicekit_settings.register_defaults({"RATE_LIMIT_TIMEOUT": 0.25, "RATE_LIMIT_RETRY_SECONDS": 1.0})

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# GCRA over one key: the value is the bucket's theoretical arrival time (TAT) in microseconds of Redis
# TIME; the bucket is full when TAT <= now. A request fits when TAT + interval - interval * burst <= now.
# Returns {allowed, remaining, retry_after_us, reset_after_us}.
GCRA_LUA = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, 0, math.ceil(allow_at - now), math.ceil(tat - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((now - allow_at) / interval + 1e-6), 0, math.ceil(new_tat - now)}
"""
GCRA_SHA = redis_direct.script_sha(GCRA_LUA)


@dataclass(frozen=True)
class Decision:
    """One request's outcome: allowed or not, tokens left, seconds until a token and until full."""

    allowed: bool
    remaining: int
    retry_after: float
    reset_after: float


class LocalBuckets:
    """The same GCRA in this process (monotonic clock): the fallback when Redis cannot answer."""

    MAX_KEYS = 10_000

    def __init__(self) -> None:
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, budget: Budget) -> Decision:
        """Spend one token of ``key``'s bucket if there is one."""
        with self._lock:
            now = time.monotonic()
            if len(self._tats) >= self.MAX_KEYS:  # forget full buckets: they hold no state
                self._tats = {k: tat for k, tat in self._tats.items() if tat > now}
            tat = max(self._tats.get(key, now), now)
            new_tat = tat + budget.interval
            allow_at = new_tat - budget.interval * budget.burst
            if allow_at > now:
                return Decision(False, 0, allow_at - now, tat - now)
            self._tats[key] = new_tat
            return Decision(True, math.floor((now - allow_at) / budget.interval + 1e-9), 0.0, new_tat - now)


class RateLimiter:
    """Token buckets in Redis (``redis_url``), with ``LocalBuckets`` when Redis fails or is not configured."""

    def __init__(
        self, redis_url: str | None, *, key_prefix: str = "", timeout: float = 0.25, retry_after: float = 1.0
    ) -> None:
        self.key_prefix = key_prefix
        self.retry_after = retry_after
        self.local = LocalBuckets()
        self._redis: Any = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._skip_redis_until = 0.0
        self._outage = False

    def hit(self, route_class: str, identity: str, budget: Budget) -> Decision:
        """Spend one token of ``identity``'s bucket of ``route_class``; never raises."""
        key = f"{self.key_prefix}ratelimit:{route_class}:{_digest(identity)}"
        if self._redis is not None and time.monotonic() >= self._skip_redis_until:
            try:
                # EVALSHA on this thread's own connection (every vote pays for this round trip); the script
                # is loaded again when Redis answers NOSCRIPT.
                allowed, remaining, retry_us, reset_us = redis_direct.evalsha(
                    self._redis,
                    GCRA_LUA,
                    sha=GCRA_SHA,
                    keys=[key],
                    args=[round(budget.interval * 1_000_000, 3), budget.burst],
                )
            except Exception:  # down, slow, or refusing: fail open with the local bucket
                self._failed()
            else:
                if self._outage:
                    self._outage = False
                    logger.info("rate limit store recovered")
                return Decision(bool(allowed), int(remaining), retry_us / 1_000_000, reset_us / 1_000_000)
        if self._redis is not None:
            _count(STORE_FAILURES.labels(servicekit_settings.SERVICE_NAME))
        return self.local.hit(key, budget)

    def _failed(self) -> None:
        self._skip_redis_until = time.monotonic() + self.retry_after
        if not self._outage:
            self._outage = True
            logger.warning("rate limit store unavailable: using local buckets", exc_info=True)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _count(counter: Any) -> None:
    with contextlib.suppress(Exception):  # observability never fails a request
        counter.inc()


_limiter: RateLimiter | None = None
_limiter_lock = threading.Lock()


def limiter() -> RateLimiter:
    """The process's ``RateLimiter``, on the default cache's Redis when it is django-redis."""
    global _limiter
    with _limiter_lock:
        if _limiter is None:
            cache = settings.CACHES.get("default", {})
            redis_url = cache.get("LOCATION") if "redis" in cache.get("BACKEND", "").lower() else None
            _limiter = RateLimiter(
                redis_url if isinstance(redis_url, str) else None,
                key_prefix=f"{cache.get('KEY_PREFIX') or servicekit_settings.SERVICE_NAME}:",
                timeout=float(servicekit_settings.RATE_LIMIT_TIMEOUT),
                retry_after=float(servicekit_settings.RATE_LIMIT_RETRY_SECONDS),
            )
        return _limiter


def _reset_limiter(*, setting: str, **kwargs: Any) -> None:
    global _limiter
    if setting in ("CACHES", "SERVICEKIT"):
        _limiter = None


setting_changed.connect(_reset_limiter)


@dataclass(frozen=True)
class RouteClass:
    """What ``@rate_limited`` declares on a view."""

    name: str
    key: str
    methods: frozenset[str]

    def budget(self) -> Budget | None:
        return parse_budget(servicekit_settings.THROTTLE_RATES.get(f"{self.name}.{self.key}"))


class RateLimitThrottle(BaseThrottle):
    """DRF throttle spending a token of the view's ``rate_limit`` (set by ``@rate_limited``)."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        route: RouteClass | None = getattr(view, "rate_limit", None)
        if route is None or request.method not in route.methods:
            return True
        budget = route.budget()
        if budget is None:
            return True
        user = getattr(request, "user", None)
        if route.key == "user" and getattr(user, "is_authenticated", False):
            identity = f"user:{user.id}"  # type: ignore[union-attr]  # authenticated: a Principal
        else:
            identity = f"ip:{client_ip(request)}"
        decision = limiter().hit(route.name, identity, budget)
        request.rate_limit_headers = rate_limit_headers(route.name, budget, decision)  # type: ignore[attr-defined]
        if decision.allowed:
            return True
        self._wait = max(1, math.ceil(decision.retry_after))
        _count(RATE_LIMITED.labels(servicekit_settings.SERVICE_NAME, route.name))
        return False

    def wait(self) -> float | None:
        return self._wait


def rate_limit_headers(name: str, budget: Budget, decision: Decision) -> dict[str, str]:
    """The ``RateLimit-Policy`` and ``RateLimit`` fields (draft-ietf-httpapi-ratelimit-headers-10)."""
    return {
        "RateLimit-Policy": f'"{name}";q={budget.burst};w={budget.window}',
        "RateLimit": f'"{name}";r={decision.remaining};t={math.ceil(decision.reset_after - 1e-9)}',
    }


ViewClass = TypeVar("ViewClass", bound=type)


def rate_limited(
    route_class: str, *, key: str = "user", methods: Collection[str] = WRITE_METHODS
) -> Callable[[ViewClass], ViewClass]:
    """Class decorator: requests of ``methods`` spend the ``route_class`` bucket of the caller.

    ``key="user"``: the authenticated user's id, else the client IP; ``key="ip"``: always the client IP.
    The budget is ``THROTTLE_RATES["<route_class>.<key>"]``; every answer gets the ratelimit headers.
    """
    if key not in ("user", "ip"):
        raise ValueError(f"rate limit key must be 'user' or 'ip', not {key!r}")

    def decorate(view_class: ViewClass) -> ViewClass:
        inherited = getattr(view_class, "rate_limit", None) is not None  # a subclass of a limited view
        view_class.rate_limit = RouteClass(route_class, key, frozenset(m.upper() for m in methods))  # type: ignore[attr-defined]
        if inherited:
            return view_class
        original = view_class.finalize_response  # type: ignore[attr-defined]

        def finalize_response(self: Any, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
            response = original(self, request, response, *args, **kwargs)
            for name, value in (getattr(request, "rate_limit_headers", None) or {}).items():
                response[name] = value
            return response

        view_class.throttle_classes = [*view_class.throttle_classes, RateLimitThrottle]  # type: ignore[attr-defined]
        view_class.finalize_response = finalize_response  # type: ignore[attr-defined]
        return view_class

    return decorate
