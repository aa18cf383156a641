"""The broker topology of events and the functions that put batches of events on the bus.

    from servicekit.events import bus
    bus.publish_batch(producer, "vote.cast", [envelope_json, ...])  # fan-out by routing key = type
    bus.publish_to_queue(producer, envelope, bus.events_queue_name("choices"), attempt=1, countdown=2.0)
    CELERY_TASK_QUEUES = bus.celery_queues("votes")                     # a service's queues (settings)

Topology (declared by producers and consumers alike, so either can start first)::

    polls.events      durable topic exchange, routing key = event type ("vote.cast")
    <service>.events  durable queue of each consuming service, bound to the types it consumes
                      (contracts/events/registry.json), dead-lettering to polls.events.dlx
    polls.events.dlx  durable direct exchange for messages a consumer gave up on
    <service>.events.dlq  durable queue bound to the DLX with routing key "<service>.events.dlq"

Each message is a Celery task message for ``servicekit.events.handle_batch`` whose only argument is a
list of envelopes of ONE event type (the relay groups what is pending by type, so topic routing and
bindings work as for single events), run by every consuming service's Celery worker
(``-Q <service>.events``) with ``acks_late``, reject-on-worker-lost and prefetch 1. A message of an
earlier release (``servicekit.events.handle``, one envelope) is still consumed. Messages are
persistent (delivery_mode 2); the relay waits for publisher confirms once per batch, other
publishers (retries, dead letters, replays) use a ``confirm_publish`` connection.

The relay hands over envelopes as JSON text (``batch_body``), so publishing decodes and re-encodes
nothing per event.

Virtual transports (kombu ``filesystem://``) keep exchange bindings per process: ``declare_topology``
declares every consumer queue from the registry on the publishing channel, so fan-out works there too.

Names carry an optional prefix (``EVENTS_NAMESPACE`` env, e.g. ``events-test``) so concurrent test
runs on one RabbitMQ never share queues.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from kombu import Exchange, Queue, binding

from servicekit.env import env
from servicekit.events.registry import Registry, get_registry

HANDLE_TASK = "servicekit.events.handle"  # one envelope (messages of earlier releases)
HANDLE_BATCH_TASK = "servicekit.events.handle_batch"  # a list of envelopes
RELAY_TASK = "servicekit.events.relay"


def namespace() -> str:
    ns = env.str("EVENTS_NAMESPACE", default="")
    return f"{ns}." if ns else ""


def exchange_name(registry: Registry | None = None) -> str:
    return namespace() + (registry or get_registry()).exchange


def events_exchange(registry: Registry | None = None) -> Exchange:
    return Exchange(exchange_name(registry), type="topic", durable=True, delivery_mode=2)


def dead_letter_exchange(registry: Registry | None = None) -> Exchange:
    return Exchange(exchange_name(registry) + ".dlx", type="direct", durable=True, delivery_mode=2)


def events_queue_name(service: str) -> str:
    return f"{namespace()}{service}.events"


def dead_letter_queue_name(service: str) -> str:
    return events_queue_name(service) + ".dlq"


def default_queue_name(service: str) -> str:
    return f"{namespace()}{service}.default"


def relay_queue_name(service: str) -> str:
    return f"{namespace()}{service}.relay"


def events_queue(service: str, registry: Registry | None = None) -> Queue:
    """The durable queue of ``service`` bound to every event type it consumes."""
    registry = registry or get_registry()
    exchange = events_exchange(registry)
    return Queue(
        events_queue_name(service),
        bindings=[binding(exchange, routing_key=key) for key in registry.consumed_by(service)],
        durable=True,
        queue_arguments={
            "x-dead-letter-exchange": dead_letter_exchange(registry).name,
            "x-dead-letter-routing-key": dead_letter_queue_name(service),
        },
    )


def dead_letter_queue(service: str, registry: Registry | None = None) -> Queue:
    name = dead_letter_queue_name(service)
    return Queue(name, dead_letter_exchange(registry), routing_key=name, durable=True)


def celery_queues(service: str, registry: Registry | None = None) -> list[Queue]:
    """``CELERY_TASK_QUEUES`` of ``service``: default, relay, and (if it consumes events) events + DLQ."""
    registry = registry or get_registry()
    direct = Exchange("", type="direct")
    queues = [
        Queue(default_queue_name(service), direct, routing_key=default_queue_name(service), durable=True),
        Queue(relay_queue_name(service), direct, routing_key=relay_queue_name(service), durable=True),
    ]
    if registry.consumed_by(service):
        queues += [events_queue(service, registry), dead_letter_queue(service, registry)]
    return queues


def all_consumer_queues(registry: Registry | None = None) -> list[Queue]:
    """Every consumer queue and DLQ in the registry: what a publisher declares before publishing."""
    registry = registry or get_registry()
    queues: list[Queue] = []
    for service in registry.consumer_services():
        queues += [events_queue(service, registry), dead_letter_queue(service, registry)]
    return queues


def declare_topology(channel: Any, registry: Registry | None = None) -> None:
    """Declare exchanges, every consumer queue and its bindings on ``channel`` (idempotent)."""
    registry = registry or get_registry()
    events_exchange(registry)(channel).declare()
    dead_letter_exchange(registry)(channel).declare()
    for queue in all_consumer_queues(registry):
        queue(channel).declare()


def _headers(*, event_type: str, count: int, countdown: float | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Headers and properties of a ``handle_batch`` task message (Celery message protocol 2).

    Only what a worker reads (``lang``, ``task``, ``id``, ``root_id``, ``parent_id``, ``group``, ``eta``,
    ``argsrepr``, ``ignore_result``), not the ~20 mostly-null headers ``as_task_v2`` writes: py-amqp
    encodes header tables in Python, and they were most of a relay round's CPU.
    """
    task_id = str(uuid.uuid4())
    headers = {
        "lang": "py",
        "task": HANDLE_BATCH_TASK,
        "id": task_id,
        "root_id": task_id,
        "parent_id": None,
        "group": None,
        "argsrepr": f"({count} {event_type})",
        "ignore_result": True,
        "event_type": event_type,
        "event_count": count,
    }
    if countdown:
        headers["eta"] = (datetime.now(UTC) + timedelta(seconds=countdown)).isoformat()
    return headers, {"correlation_id": task_id, "reply_to": ""}


def batch_body(envelope_texts: list[str], *, attempt: int = 0) -> str:
    """The JSON body of a ``handle_batch`` task message, from envelopes already in JSON text form
    (the relay reads them as text: nothing is decoded and re-encoded per event)."""
    kwargs = f'{{"attempt": {int(attempt)}}}' if attempt else "{}"
    return f"[[[{','.join(envelope_texts)}]], {kwargs}, {_EMBED}]"


_EMBED = '{"callbacks": null, "errbacks": null, "chain": null, "chord": null}'


def publish_batch(
    producer: Any,
    event_type: str,
    envelope_texts: list[str],
    *,
    exchange: str | None = None,
    routing_key: str | None = None,
    attempt: int = 0,
    countdown: float | None = None,
    traceparent: str | None = None,
) -> None:
    """Publish one ``servicekit.events.handle_batch`` message carrying ``envelope_texts`` (JSON text of
    envelopes of ``event_type``) to the events exchange with routing key = the type, or to ``exchange``
    / ``routing_key`` when given (``""`` / a queue name: one queue only). ``traceparent`` (the relay's
    publish span, tracing on) goes in the headers, where Celery's instrumentation on the consumer reads it."""
    headers, properties = _headers(event_type=event_type, count=len(envelope_texts), countdown=countdown)
    if traceparent:
        headers["traceparent"] = traceparent
    producer.publish(
        batch_body(envelope_texts, attempt=attempt),
        exchange=exchange_name() if exchange is None else exchange,
        routing_key=event_type if routing_key is None else routing_key,
        content_type="application/json",
        content_encoding="utf-8",
        headers=headers,
        delivery_mode=2,
        retry=False,
        **properties,
    )


def publish_to_queue(
    producer: Any,
    envelope: Any,
    queue_name: str,
    *,
    attempt: int = 0,
    countdown: float | None = None,
) -> None:
    """Send ``envelope`` alone (a one-event batch) to queue ``queue_name`` only (retries, dead letters,
    replays): the default exchange routes by queue name."""
    event_type = envelope.get("type") if isinstance(envelope, dict) else None
    publish_batch(
        producer,
        str(event_type or "?")[:100],
        [json.dumps(envelope, default=str)],
        exchange="",
        routing_key=queue_name,
        attempt=attempt,
        countdown=countdown,
    )


CONNECT_TIMEOUT = 2.0
_local = threading.local()


def celery_app() -> Any:
    from celery import current_app

    return current_app._get_current_object()  # type: ignore[attr-defined]  # a Proxy at run time; celery-types types it as the app


def connect(app: Any = None, *, confirm: bool = True) -> Any:
    """A new broker connection, connected now (one attempt, ``CONNECT_TIMEOUT``), or an exception.

    ``confirm=False`` turns publisher confirms off for this connection (hints that may be lost, such
    as relay requests, must not wait for RabbitMQ's disk sync inside a web request).
    """
    app = app or celery_app()
    conn = (
        app.connection_for_write()
        if confirm
        else app.connection_for_write(transport_options={"confirm_publish": False})
    )
    conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, interval_max=0, timeout=CONNECT_TIMEOUT)
    return conn


def _cached_producer(app: Any) -> Any:
    """This thread's producer on a reused connection (reconnecting once if it dropped)."""
    producer = getattr(_local, "producer", None)
    if producer is not None and getattr(_local, "pid", None) == os.getpid() and producer.connection.connected:
        return producer
    drop_cached_connection()
    conn = connect(app, confirm=False)
    producer = conn.Producer()
    _local.producer, _local.pid, _local.declared = producer, os.getpid(), set()
    return producer


def drop_cached_connection() -> None:
    producer = getattr(_local, "producer", None)
    _local.producer = None
    if producer is not None and getattr(_local, "pid", None) == os.getpid():
        with contextlib.suppress(Exception):  # already broken: nothing to release
            producer.connection.release()


def send_relay_request(service: str | None = None, *, linger: float | None = None) -> None:
    """Queue one ``servicekit.events.relay`` task on ``<service>.relay`` (raises if the broker is down)."""
    from servicekit.conf import servicekit_settings

    app = celery_app()
    service = service or servicekit_settings.SERVICE_NAME
    queue_name = relay_queue_name(service)
    message = app.amqp.as_task_v2(
        str(uuid.uuid4()),
        RELAY_TASK,
        args=(),
        kwargs={"linger": linger} if linger is not None else {},
        expires=60,
        ignore_result=True,
    )
    headers, properties, body, _ = message
    try:
        producer = _cached_producer(app)
        declared = _local.declared
        declare = (
            []
            if queue_name in declared
            else [Queue(queue_name, Exchange("", type="direct"), routing_key=queue_name, durable=True)]
        )
        # A hint, not data: transient and unconfirmed (the outbox row is the durable part; the
        # sweep publishes it if this request is lost).
        producer.publish(
            body,
            exchange="",
            routing_key=queue_name,
            serializer="json",
            headers=headers,
            delivery_mode=1,
            retry=False,
            declare=declare,
            **properties,
        )
        declared.add(queue_name)
    except Exception:
        drop_cached_connection()
        raise
