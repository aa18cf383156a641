"""Prometheus metrics that add up across every web worker.

``MetricsMiddleware`` counts requests and observes latency by service, method, route *pattern*
(never the raw path, so ids do not explode cardinality) and status. ``metrics_view`` serves
``/metrics``. With ``PROMETHEUS_MULTIPROC_DIR`` set (``make up`` and the container entrypoint set it,
to a folder emptied before the server starts), each worker writes its samples to that directory and a
scrape aggregates all of them; without it, the process's own registry is served. There are no live
gauges, so a dead worker's files need no clean-up: its counts stay in the totals, as they should.

Other modules declare their own metrics next to the code that moves them, e.g.::

    from prometheus_client import Counter
    REPAIRS = Counter("polls_tally_repairs_total", "Tallies corrected by reconciliation", ["service"])

Observability degrades, never crashes: an error while recording a metric is logged and swallowed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from servicekit.conf import servicekit_settings

logger = logging.getLogger(__name__)

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests handled, by route pattern and status.",
    ["service", "method", "route", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time spent handling an HTTP request.",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return "/" + (match.route or match.view_name or "unknown").lstrip("^")


# ``labels()`` takes a lock and checks the label values on every call; the series of one (service,
# method, route, status) are always the same objects, so each is looked up once per process.
_series_cache: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}


def _series(service: str, method: str, route: str, status: int) -> tuple[Any, Any]:
    """The request counter and latency histogram children for these labels."""
    key = (service, method, route, status)
    series = _series_cache.get(key)
    if series is None:
        series = (REQUESTS.labels(service, method, route, str(status)), LATENCY.labels(service, method, route))
        _series_cache[key] = series
    return series


class MetricsMiddleware:
    """Record one counter increment and one latency observation per request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        try:
            service = servicekit_settings.SERVICE_NAME
            requests, latency = _series(service, request.method, _route(request), response.status_code)
            requests.inc()
            latency.observe(time.perf_counter() - started)
        except Exception:
            logger.exception("could not record request metrics")
        return response


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus exposition of this service (all workers when in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        payload = generate_latest(registry)
    else:
        payload = generate_latest()
    return HttpResponse(payload, content_type=CONTENT_TYPE_LATEST)
