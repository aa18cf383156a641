"""OpenTelemetry tracing of every process: one setup, the spans of the event pipeline, W3C context helpers.

Each process sets tracing up once, after it has forked (a web worker when it imports the WSGI
application, a Celery child in ``worker_process_init``)::

    from servicekit import tracing
    tracing.setup()          # False (and nothing installed) unless OTEL_EXPORTER_OTLP_ENDPOINT is set

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` unset (or ``OTEL_SDK_DISABLED=true``) nothing is imported or
patched: no SDK, no instrumentation, no per-request work; ``tracing.ENABLED`` stays False and the hot
paths check that one flag. When set:

- an SDK ``TracerProvider`` with the resource ``service.name`` (``OTEL_SERVICE_NAME`` or the
  service's name, e.g. ``votes``), ``service.version`` (``SERVICE_VERSION``, else servicekit's),
  ``deployment.environment`` (``DJANGO_ENV``) and anything in ``OTEL_RESOURCE_ATTRIBUTES``;
- the sampler the SDK reads from ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` (default
  ``parentbased_always_on``: a request follows the sampled flag of its ``traceparent``, which the
  gateway sets for ``GATEWAY_TRACE_SAMPLE_PERCENT`` of requests);
- a ``BatchSpanProcessor`` exporting OTLP/HTTP (protobuf) to ``$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces``,
  flushed at exit (``atexit``; Celery children also in ``worker_process_shutdown``);
- instrumentation of Django (server spans, ``/healthz``, ``/readyz`` and ``/metrics`` excluded unless
  ``OTEL_PYTHON_DJANGO_EXCLUDED_URLS`` says otherwise), psycopg 3, Celery, Redis and ``requests``
  (the service-to-service client: the ``traceparent`` header goes out with every call).

The event pipeline continues one trace from the request that wrote an outbox row to every consumer:
``outbox_span`` (the outbox write; its context is the envelope's ``traceparent``), ``PublishSpans``
(the relay: one PRODUCER span per event, child of that context, whose own context replaces the
envelope's and rides in the message header) and ``ConsumeSpans`` (a consumer: one CONSUMER batch
span linking every event's context, and one span per event whose parent is the event's context).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

#: True once this process exports spans (``setup()`` succeeded). Hot paths test this and nothing else.
ENABLED = False

_provider: Any = None
_tracer: Any = None
_lock = threading.Lock()
_pid: int | None = None

TRACER_NAME = "servicekit"
DEFAULT_EXCLUDED_URLS = "healthz,readyz,metrics"
# The envelope's traceparent inside its JSON text (jsonb prints ": ", json.dumps too; compact JSON has none).
_TRACEPARENT_IN_JSON = re.compile(r'"traceparent": ?"(00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2})"')
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def _env() -> Any:
    from servicekit.env import env

    return env


def configured() -> bool:
    """Whether this process should export traces: an OTLP endpoint is set and the SDK is not disabled."""
    env = _env()
    endpoint = env.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", default="") or env.str(
        "OTEL_EXPORTER_OTLP_ENDPOINT", default=""
    )
    return bool(endpoint.strip()) and not env.bool("OTEL_SDK_DISABLED", default=False)


def _service_name() -> str:
    try:
        from servicekit.conf import servicekit_settings

        return str(servicekit_settings.SERVICE_NAME)
    except Exception:  # noqa: BLE001 - settings not configured (a script): the SDK's default name
        return "unknown_service"


def _resource(process: str) -> Any:
    """Our attributes, then what the environment says (``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``) wins."""
    from importlib.metadata import PackageNotFoundError, version

    from opentelemetry.sdk.resources import OTELResourceDetector, Resource

    env = _env()
    try:
        kit_version = version("servicekit")
    except PackageNotFoundError:
        kit_version = "0"
    ours = Resource.create(
        {
            "service.name": _service_name(),
            "service.version": env.str("SERVICE_VERSION", default="") or kit_version,
            "deployment.environment": env.str("DJANGO_ENV", default="development"),
            "service.instance.role": process,  # web or worker
            "process.pid": os.getpid(),
        }
    )
    return ours.merge(OTELResourceDetector().detect())


def setup(*, process: str = "web", exporter: Any = None) -> bool:
    """Install the SDK and every instrumentation in this process, once (call it after fork).

    Returns whether tracing is on. ``exporter`` replaces the OTLP exporter (benchmarks, tests); with
    it, the endpoint need not be set. Never raises: a tracing problem must not stop a service.
    """
    global ENABLED, _provider, _pid, _tracer
    if exporter is None and not configured():
        return False
    with _lock:
        if ENABLED and _pid == os.getpid():
            return True
        try:
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            if exporter is None:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                exporter = OTLPSpanExporter()
            provider = TracerProvider(resource=_resource(process))  # sampler: OTEL_TRACES_SAMPLER(_ARG)
            provider.add_span_processor(BatchSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            _instrument(provider)
        except Exception:  # noqa: BLE001 - observability degrades, never crashes
            logger.exception("tracing setup failed; this process exports no spans")
            return False
        _provider, _pid, ENABLED = provider, os.getpid(), True
        _tracer = provider.get_tracer(TRACER_NAME)
    atexit.register(shutdown)
    return True


def _instrument(provider: Any) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    excluded = _env().str("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", default="") or DEFAULT_EXCLUDED_URLS
    # Django first and before the WSGI handler loads its middleware: it inserts its own.
    for instrumentor, options in (
        (DjangoInstrumentor(), {"excluded_urls": excluded}),
        (PsycopgInstrumentor(), {"enable_commenter": False}),
        (CeleryInstrumentor(), {}),
        (RedisInstrumentor(), {}),
        (RequestsInstrumentor(), {}),
    ):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider, **options)


def shutdown() -> None:
    """Export what is buffered and stop the exporter (worker exit, ``atexit``). Safe to call twice."""
    global ENABLED
    provider = _provider
    if provider is None or _pid != os.getpid():
        return
    ENABLED = False
    with contextlib.suppress(Exception):  # the collector may be gone at exit: nothing to save
        provider.force_flush(5_000)
        provider.shutdown()


def force_flush(timeout_ms: int = 5_000) -> bool:
    """Export buffered spans now (tests and benchmarks); True when there was nothing to do or it worked."""
    return bool(_provider.force_flush(timeout_ms)) if _provider is not None else True


def tracer() -> Any:
    """servicekit's tracer (from this process's provider once ``setup()`` ran, else the global one)."""
    if _tracer is not None:
        return _tracer
    from opentelemetry import trace

    return trace.get_tracer(TRACER_NAME)


# --- W3C trace context ------------------------------------------------------------------------------


def traceparent_of(span: Any) -> str | None:
    """The W3C ``traceparent`` of ``span`` (None for an invalid one)."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def span_context(traceparent: str | None) -> Any:
    """A remote ``SpanContext`` from a ``traceparent`` (None when absent or malformed)."""
    match = _TRACEPARENT.match(traceparent or "")
    if not match:
        return None
    from opentelemetry.trace import SpanContext, TraceFlags

    trace_id, span_id, flags = (int(part, 16) for part in match.groups())
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 0x01))


def parent_context(traceparent: str | None) -> Any:
    """An OpenTelemetry ``Context`` whose parent is ``traceparent`` (None when there is none)."""
    remote = span_context(traceparent)
    if remote is None:
        return None
    from opentelemetry.trace import NonRecordingSpan, set_span_in_context

    return set_span_in_context(NonRecordingSpan(remote))


# --- the event pipeline -------------------------------------------------------------------------------


def outbox_span(event_type: str, *, event_id: str | None = None) -> Any:
    """Start (not activate) the span of writing one outbox row; the caller ends it. Its context is what
    the envelope stores as ``traceparent`` (``traceparent_of(span)``)."""
    from opentelemetry.trace import SpanKind

    attributes = {"messaging.system": "rabbitmq", "messaging.operation.type": "create", "event.type": event_type}
    if event_id:
        attributes["messaging.message.id"] = event_id
    return tracer().start_span(f"{event_type} create", kind=SpanKind.PRODUCER, attributes=attributes)


@contextlib.contextmanager
def activated(span: Any) -> Iterator[None]:
    """``span`` as the current span inside the block (not ended on exit)."""
    from opentelemetry import trace

    with trace.use_span(span, end_on_exit=False):
        yield


@contextlib.contextmanager
def outbox_write(event_type: str, *, event_id: str | None = None) -> Iterator[Any]:
    """The outbox write of ``emit()`` as the current span (ended on exit)."""
    from opentelemetry import trace

    span = outbox_span(event_type, event_id=event_id)
    with trace.use_span(span, end_on_exit=True):
        yield span


def envelope_traceparent(envelope_text: str) -> str | None:
    """The ``traceparent`` inside an envelope's JSON text, without decoding it."""
    match = _TRACEPARENT_IN_JSON.search(envelope_text)
    return match.group(1) if match else None


class PublishSpans:
    """The relay's spans of one round: a PRODUCER span per event (child of its envelope's context).

    ``start(event_type, texts)`` opens the spans of one message and rewrites each recorded event's
    ``traceparent`` in its JSON text to its publish span (consumers continue from there); it returns the
    ``traceparent`` for the message header (the first recorded event's), so Celery's consumer-side span
    joins that trace. ``end(confirmed)`` closes them, marking events of unconfirmed messages as errors.
    """

    def __init__(self, exchange: str):
        self.exchange = exchange
        self.spans: dict[str, list[Any]] = {}

    def start(self, event_type: str, texts: list[str]) -> str | None:
        from opentelemetry.trace import SpanKind

        t = tracer()
        header = None
        spans = self.spans.setdefault(event_type, [])
        for i, text in enumerate(texts):
            old = envelope_traceparent(text)
            parent = parent_context(old)
            if parent is None:
                continue
            span = t.start_span(
                f"{self.exchange} publish",
                context=parent,
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.operation.type": "publish",
                    "messaging.destination.name": self.exchange,
                    "messaging.rabbitmq.destination.routing_key": event_type,
                    "messaging.batch.message_count": len(texts),
                    "event.type": event_type,
                },
            )
            spans.append(span)
            if not span.is_recording():
                continue
            new = traceparent_of(span)
            if old is None or new is None:  # parent_context() found a parent in ``old``; a recording span is valid
                continue
            texts[i] = text.replace(old, new, 1)
            header = header or new
        return header

    def end(self, confirmed: Iterable[str]) -> None:
        from opentelemetry.trace import Status, StatusCode

        ok = set(confirmed)
        for event_type, spans in self.spans.items():
            for span in spans:
                if event_type not in ok:
                    span.set_status(Status(StatusCode.ERROR, "not confirmed by the broker"))
                span.end()
        self.spans.clear()


class ConsumeSpans:
    """A consumer's spans of one delivered message of ``events`` (``servicekit.events.Event``).

    The batch span (CONSUMER, current while the batch is applied, child of the current span: Celery's
    task span) links every event's context; each event gets a span whose parent is its envelope's
    ``traceparent`` and which links the batch span. ``applied(event)`` logs "event applied" inside the
    event's span, so that line carries the vote's trace id.
    """

    def __init__(self, events: list[Any], *, service: str):
        from opentelemetry.trace import Link, SpanKind

        self._events: dict[str, Any] = {}
        self.service = service
        links = []
        for event in events:
            remote = span_context(getattr(event, "traceparent", None))
            if remote is not None:
                links.append(Link(remote, {"messaging.message.id": event.id}))
        first = events[0].type if events else "events"
        self.batch = tracer().start_span(
            f"{first} process",
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "process",
                "messaging.batch.message_count": len(events),
                "messaging.destination.name": service,
            },
        )
        batch_link = [Link(self.batch.get_span_context())]
        t = tracer()
        for event in events:
            parent = parent_context(getattr(event, "traceparent", None))
            if parent is None:
                continue
            self._events[event.id] = t.start_span(
                f"{event.type} apply",
                context=parent,
                kind=SpanKind.CONSUMER,
                links=batch_link,
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.operation.type": "process",
                    "messaging.message.id": event.id,
                    "event.type": event.type,
                    "event.aggregate_id": event.aggregate_id,
                },
            )

    @contextlib.contextmanager
    def applying(self) -> Iterator[None]:
        """The batch span as the current span (database spans of the apply nest under it)."""
        from opentelemetry import trace

        with trace.use_span(self.batch, end_on_exit=False, record_exception=True, set_status_on_exception=True):
            yield

    def applied(self, event: Any, outcome: str = "applied") -> None:
        """Record the outcome on the event's span; an applied event logs one INFO line inside it."""
        span = self._events.get(event.id)
        if span is None:
            return
        span.set_attribute("event.outcome", outcome)
        if outcome == "applied":
            from opentelemetry import trace

            with trace.use_span(span, end_on_exit=False):
                logging.getLogger("servicekit.events").info(
                    "event applied",
                    extra={"event_id": event.id, "event_type": event.type, "aggregate_id": event.aggregate_id},
                )

    def end(self, failed: Iterable[Any] = ()) -> None:
        from opentelemetry.trace import Status, StatusCode

        failed_ids = {event.id for event in failed}
        for event_id, span in self._events.items():
            if event_id in failed_ids:
                span.set_status(Status(StatusCode.ERROR, "handler failed"))
            span.end()
        self.batch.end()
