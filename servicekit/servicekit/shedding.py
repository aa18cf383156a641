"""Load shedding: an adaptive limit on how long a request may have queued, answered 503 beyond it.

``servicekit.settings`` installs the middleware right after the request id and metrics::

    "servicekit.shedding.LoadSheddingMiddleware",

Each web worker serves its requests one at a time (``WEB_THREADS``, default 1), so under overload the
excess waits in front of Django: in the server's queue and on the gateway's upstream connections.
The gateway stamps every request with ``X-Request-Start: t=<epoch seconds.millis>``; the middleware's
*wait* is now minus that stamp: the time the request queued before Django saw it. A request that waited
longer than the worker's current *limit* is answered at once with ``503`` problem+json and
``Retry-After`` of 1 or 2 seconds (a few hundred microseconds, where a vote costs milliseconds), before any
view, database or event work: a shed request changes nothing. The delay is drawn at random: the requests shed
in one moment would all come back in the same later moment with one fixed value, and the workers would idle
between those waves (make bench's 16 x overload run, docs/performance.md).

Only under *sustained* overload (a busy 2-core test machine must never shed): a worker starts shedding
when, over a whole window (at least ``LOAD_SHEDDING_WINDOW_MS`` and at least ``LOAD_SHEDDING_MIN_SAMPLES``
requests, so a slow worker is judged like a fast one), *every* request waited longer than the limit, two
windows in a row: a standing queue, not a burst (a burst always has a first request that did not wait). It stops after
four windows in a row in which none waited that long (shedding is what keeps them calm), or after ten window lengths
without enough requests.

The limit adapts (AIMD) while shedding: each window, when the p95 latency of the accepted requests
(wait + time in Django) exceeded ``LOAD_SHEDDING_TARGET_MS`` the limit shrinks by 10 %, otherwise it
grows by a twentieth of ``LOAD_SHEDDING_MAX_WAIT_MS`` (its starting value and ceiling), never below
``LOAD_SHEDDING_MIN_WAIT_MS`` nor below two average request times (shedding shortens queues, not
requests: a worker must always find its next request waiting, or goodput falls).

Classes (``classify``): ``/healthz``, ``/readyz`` and ``/metrics`` are never shed; reads of results
and internal service commands (``priority``) only after ``LOAD_SHEDDING_PRIORITY_MULTIPLE`` times the
limit; everything else (``default``) beyond the limit. A request without the gateway's stamp (a
direct call) has no measurable wait and is never shed.

Metrics: ``http_requests_shed_total{service,class}`` and ``load_shedding_limit_seconds{service}``.
``LOAD_SHEDDING=off`` removes it entirely. The stamp compares the gateway's clock with the service's:
on one machine that is one clock; across hosts it relies on NTP (skew of a few ms against a limit of
~150 ms); a negative or absurd wait (> 60 s) counts as no stamp.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Gauge

from servicekit.conf import servicekit_settings
from servicekit.env import env
from servicekit.errors import problem_response

logger = logging.getLogger(__name__)

servicekit_settings.register_defaults(
    {
        "LOAD_SHEDDING": env.bool("LOAD_SHEDDING", default=True),
        # p95 latency (queue wait + handling, seconds) the accepted requests of a shedding worker should keep.
        "LOAD_SHEDDING_TARGET": env.float("LOAD_SHEDDING_TARGET_MS", default=150.0) / 1000,
        # The wait limit: its starting value and ceiling, and its floor (seconds).
        "LOAD_SHEDDING_MAX_WAIT": env.float("LOAD_SHEDDING_MAX_WAIT_MS", default=150.0) / 1000,
        "LOAD_SHEDDING_MIN_WAIT": env.float("LOAD_SHEDDING_MIN_WAIT_MS", default=10.0) / 1000,
        # Overload is judged per window of this many seconds holding at least MIN_SAMPLES stamped requests.
        "LOAD_SHEDDING_WINDOW": env.float("LOAD_SHEDDING_WINDOW_MS", default=500.0) / 1000,
        "LOAD_SHEDDING_MIN_SAMPLES": env.int("LOAD_SHEDDING_MIN_SAMPLES", default=20),
        "LOAD_SHEDDING_PRIORITY_MULTIPLE": env.float("LOAD_SHEDDING_PRIORITY_MULTIPLE", default=4.0),
    }
)

SHED = Counter("http_requests_shed_total", "Requests answered 503 by load shedding.", ["service", "class"])
LIMIT = Gauge(
    "load_shedding_limit_seconds",
    "The queue wait beyond which a worker sheds requests (the most recent worker's value).",
    ["service"],
    multiprocess_mode="mostrecent",
)

EXEMPT, PRIORITY, DEFAULT = "exempt", "priority", "default"
EXEMPT_PATHS = ("/healthz", "/readyz", "/metrics")
MAX_PLAUSIBLE_WAIT = 60.0
SUSTAIN_WINDOWS = 2  # windows in a row with a standing queue before a worker sheds
# Calm windows in a row (nobody waited beyond the limit) before a shedding worker stops. Shedding is what
# keeps the queue short, so one calm window while shedding is no sign that the overload ended: a worker
# that stopped after one rebuilt the queue for SUSTAIN_WINDOWS before shedding again, and the requests it
# served in that second waited past the p99 target (make bench's overload runs, docs/performance.md).
# Staying costs nothing when the overload did end: only requests that waited beyond the limit are shed.
HOLD_WINDOWS = 4
IDLE_WINDOWS = 10  # a window this many times too long without MIN_SAMPLES requests: not overloaded
RETRY_AFTER_SECONDS = ("1", "2")  # a shed answer's Retry-After, drawn at random (module docstring)


def classify(method: str, path: str) -> str:
    """The shedding class of a request: ``exempt`` (probes), ``priority`` (results reads, internal) or ``default``."""
    if path.rstrip("/") in EXEMPT_PATHS:
        return EXEMPT
    if path.startswith("/internal/"):
        return PRIORITY
    if method in ("GET", "HEAD") and path.startswith("/api/v") and "/results/" in path:
        return PRIORITY
    return DEFAULT


def queue_wait(header: str | None, now: float) -> float | None:
    """Seconds since the gateway's ``X-Request-Start: t=<epoch s.ms>`` stamp; ``None`` without a usable one."""
    if not header:
        return None
    try:
        stamp = float(header.removeprefix("t="))
    except ValueError:
        return None
    wait = now - stamp
    if not math.isfinite(wait) or wait < 0 or wait > MAX_PLAUSIBLE_WAIT:
        return None
    return wait


@dataclass
class Limiter:
    """One worker's shedding state; pure logic on a clock, safe for several request threads."""

    target: float
    max_wait: float
    min_wait: float
    window: float
    min_samples: int
    priority_multiple: float
    clock: Callable[[], float] = time.monotonic
    limit: float = field(init=False)
    overloaded: bool = field(default=False, init=False)
    service_time: float | None = field(default=None, init=False)  # moving average of time in Django

    def __post_init__(self) -> None:
        self.limit = self.max_wait
        self._standing = 0  # consecutive windows with a standing queue (before overload)
        self._calm = 0  # consecutive windows without a long wait (in overload)
        self._lock = threading.Lock()
        self._window_start = self.clock()
        self._reset_window()

    def _reset_window(self) -> None:
        self._arrivals = 0
        self._min_wait = math.inf
        self._max_wait = 0.0
        self._latencies: list[float] = []

    def admit(self, wait: float, request_class: str) -> bool:
        """Whether a request that queued ``wait`` seconds is served (else: shed)."""
        if request_class == EXEMPT:
            return True
        with self._lock:
            self._roll_window()
            self._arrivals += 1
            self._min_wait = min(self._min_wait, wait)
            self._max_wait = max(self._max_wait, wait)
            if not self.overloaded:
                return True
            allowed = self.limit * (self.priority_multiple if request_class == PRIORITY else 1.0)
            return wait <= allowed

    def record(self, latency: float, wait: float = 0.0) -> None:
        """An admitted request that queued ``wait`` s finished ``latency`` s after the gateway stamped it."""
        with self._lock:
            self._latencies.append(latency)
            service = max(latency - wait, 0.0)
            self.service_time = service if self.service_time is None else 0.9 * self.service_time + 0.1 * service

    def _roll_window(self) -> None:
        now = self.clock()
        elapsed = now - self._window_start
        if elapsed < self.window:
            return
        if self._arrivals < self.min_samples:
            # A window spans at least MIN_SAMPLES arrivals too, so a slow worker (few requests per second)
            # is judged as surely as a fast one; a worker this quiet for long is simply not overloaded.
            if elapsed < IDLE_WINDOWS * self.window:
                return
            self.overloaded = False
        elif not self.overloaded:
            # every request of a whole window queued beyond the limit, SUSTAIN windows in a row
            self._standing = self._standing + 1 if self._min_wait > self.limit else 0
            self.overloaded = self._standing >= SUSTAIN_WINDOWS
            self._calm = 0
        elif self._max_wait <= self.limit:
            self._calm += 1  # a whole window in which nobody would have been shed, HOLD windows in a row
            self.overloaded = self._calm < HOLD_WINDOWS
        else:
            self._calm = 0
        if self.overloaded:
            self._standing = 0
            if self._latencies:
                self._adapt()
        else:
            self.limit = self.max_wait
        self._window_start = now
        self._reset_window()

    def _adapt(self) -> None:
        ordered = sorted(self._latencies)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        if p95 > self.target:
            # Shedding shortens queues, not requests: keep two requests' worth of queue so that a worker
            # never idles between requests (goodput) when the latency is the requests' own.
            floor = max(self.min_wait, 2 * (self.service_time or 0.0))
            self.limit = max(self.limit * 0.9, min(floor, self.max_wait))
        else:
            self.limit = min(self.limit + self.max_wait / 20, self.max_wait)


def limiter_from_settings(clock: Callable[[], float] = time.monotonic) -> Limiter:
    """A ``Limiter`` with the ``LOAD_SHEDDING_*`` settings."""
    s = servicekit_settings
    return Limiter(
        target=s.LOAD_SHEDDING_TARGET,
        max_wait=s.LOAD_SHEDDING_MAX_WAIT,
        min_wait=s.LOAD_SHEDDING_MIN_WAIT,
        window=s.LOAD_SHEDDING_WINDOW,
        min_samples=s.LOAD_SHEDDING_MIN_SAMPLES,
        priority_multiple=s.LOAD_SHEDDING_PRIORITY_MULTIPLE,
        clock=clock,
    )


class LoadSheddingMiddleware:
    """Answer 503 + ``Retry-After`` (1 or 2 s) to requests that queued beyond this worker's limit (module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        if not servicekit_settings.LOAD_SHEDDING:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.limiter = limiter_from_settings()
        self.service = servicekit_settings.SERVICE_NAME
        self._shed = {name: SHED.labels(self.service, name) for name in (PRIORITY, DEFAULT)}
        self._limit = LIMIT.labels(self.service)
        self._published = -1.0
        self._publish_limit()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        wait = queue_wait(request.META.get("HTTP_X_REQUEST_START"), time.time())
        request_class = classify(request.method or "", request.path)
        if wait is None or request_class == EXEMPT:
            return self.get_response(request)
        started = time.perf_counter()
        if not self.limiter.admit(wait, request_class):
            return self._shed_response(request, request_class)
        response = self.get_response(request)
        self.limiter.record(wait + time.perf_counter() - started, wait)
        self._publish_limit()
        return response

    def _publish_limit(self) -> None:
        if self.limiter.limit != self._published:
            try:  # observability degrades, never fails a request
                self._limit.set(self.limiter.limit)
                self._published = self.limiter.limit
            except Exception:  # noqa: BLE001
                logger.exception("could not record the load-shedding limit")

    def _shed_response(self, request: HttpRequest, request_class: str) -> HttpResponse:
        response = problem_response(request, 503, "The service is overloaded; retry in a moment.", "overloaded")
        response["Retry-After"] = random.choice(RETRY_AFTER_SECONDS)
        # Counted below and in the access log: Django's own error line per 503 would cost more than the shed.
        response._has_been_logged = True  # type: ignore[attr-defined]
        try:  # observability degrades, never fails a request
            self._shed[request_class].inc()
        except Exception:  # noqa: BLE001
            logger.exception("could not count a shed request")
        self._publish_limit()
        return response
