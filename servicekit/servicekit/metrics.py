"""Prometheus metrics that add up across every web worker.

``MetricsMiddleware`` counts requests and observes latency by service, method, route *pattern*
(never the raw path, so ids do not explode cardinality) and status. ``metrics_view`` serves
``/metrics``. With ``PROMETHEUS_MULTIPROC_DIR`` set (``make up`` and the container entrypoint set it,
to a folder emptied before the server starts), each worker writes its samples to that directory and a
scrape aggregates all of them; without it, the process's own registry is served. The only live gauge
(the circuit breaker's state) uses the ``mostrecent`` mode, so a dead worker's files need no clean-up:
its counts stay in the totals, as they should.

Celery workers write to the same folder: natively (``make up``) the worker of a service shares its
web server's folder, so ``/metrics`` shows the relay and consumer metrics too. In containers, where a
worker has its own folder, ``WORKER_METRICS_PORT`` makes the worker's main process serve them itself
(``start_worker_metrics_server``, on Celery's ``worker_ready``).

Figures that are state, not events, are computed when Prometheus scrapes (``PipelineCollector``, one
cheap look-up each, no work at all between scrapes): the outbox backlog and the age of its oldest
pending row (the partial index on pending rows), dead letters not yet replayed, and the messages
waiting in this service's event queue (one passive queue declare).

Other modules declare their own metrics next to the code that moves them, e.g.::

    from prometheus_client import Counter
    REPAIRS = Counter("polls_tally_repairs_total", "Tallies corrected by reconciliation", ["service"])

Observability degrades, never crashes: an error while recording a metric is logged and swallowed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery.signals import worker_ready
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from servicekit.conf import servicekit_settings
from servicekit.env import env

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
            requests, latency = _series(service, request.method or "", _route(request), response.status_code)
            requests.inc()
            latency.observe(time.perf_counter() - started)
        except Exception:
            logger.exception("could not record request metrics")
        return response


class PipelineCollector:
    """Event pipeline state of this service, read at scrape time from its own database and queue.

    - ``events_outbox_pending{service}``: outbox rows not yet confirmed by the broker;
    - ``events_outbox_oldest_pending_age_seconds{service}``: age of the oldest of them (0 when none);
    - ``events_dead_letters{service}``: dead letters not replayed yet;
    - ``events_queue_messages{service,queue}``: messages ready in this service's event queue (absent
      when the broker cannot say). Together with ``events_consumed_total`` it tells a stalled consumer
      (messages waiting, nothing consumed) from an idle one.

    A figure that cannot be read is left out (and logged): a scrape never fails because of it.
    """

    def collect(self) -> Any:
        service = servicekit_settings.SERVICE_NAME
        try:
            yield from self._database(service)
        except Exception:
            logger.warning("could not read the outbox and dead-letter figures", exc_info=True)
        try:
            yield from self._queue(service)
        except Exception:
            logger.warning("could not read the event queue depth", exc_info=True)

    @staticmethod
    def _gauge(name: str, documentation: str, service: str, value: float) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, documentation, labels=["service"])
        family.add_metric([service], value)
        return family

    def _database(self, service: str) -> Any:
        from django.db.models import Count, Min
        from django.utils import timezone

        from servicekit.events.models import DeadLetter, OutboxEvent

        pending = OutboxEvent.objects.filter(sent_at__isnull=True).aggregate(rows=Count("id"), oldest=Min("created_at"))
        dead = DeadLetter.objects.filter(replayed_at__isnull=True).count()
        age = (timezone.now() - pending["oldest"]).total_seconds() if pending["oldest"] else 0.0
        rows = pending["rows"]
        yield self._gauge("events_outbox_pending", "Outbox rows not yet confirmed by the broker.", service, rows)
        yield self._gauge(
            "events_outbox_oldest_pending_age_seconds", "Age of the oldest pending outbox row.", service, max(age, 0.0)
        )
        yield self._gauge("events_dead_letters", "Dead letters stored and not replayed yet.", service, dead)

    def _queue(self, service: str) -> Any:
        from servicekit.events import bus
        from servicekit.events.tasks import events_backlog

        family = GaugeMetricFamily(
            "events_queue_messages", "Messages ready in this service's event queue.", labels=["service", "queue"]
        )
        family.add_metric([service, bus.events_queue_name(service)], events_backlog(service))
        yield family


def _exposition(*collectors: Any) -> bytes:
    """Every metric of this service: all processes' samples when in multiprocess mode, plus ``collectors``."""
    if env.str("PROMETHEUS_MULTIPROC_DIR", default=""):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in collectors:
            registry.register(collector)
        return generate_latest(registry)
    extra = CollectorRegistry()
    for collector in collectors:
        extra.register(collector)
    return generate_latest() + generate_latest(extra)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus exposition of this service (all workers when in multiprocess mode)."""
    return HttpResponse(_exposition(PipelineCollector()), content_type=CONTENT_TYPE_LATEST)


def start_worker_metrics_server(port: int, addr: str = "0.0.0.0") -> Any:  # noqa: S104 - a container port
    """Serve this worker's metrics (every process writing to ``PROMETHEUS_MULTIPROC_DIR``) on ``port``."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    if env.str("PROMETHEUS_MULTIPROC_DIR", default=""):
        multiprocess.MultiProcessCollector(registry)
        return start_http_server(port, addr=addr, registry=registry)
    return start_http_server(port, addr=addr)


@worker_ready.connect
def _serve_worker_metrics(**kwargs: Any) -> None:
    port = env.str("WORKER_METRICS_PORT", default="")
    if not port:
        return
    try:
        start_worker_metrics_server(int(port))
        logger.info("worker metrics served", extra={"port": int(port)})
    except Exception:
        logger.exception("could not serve worker metrics")
