"""The broker topology of events and the one function that puts an event on the bus.

Topology (declared by producers and consumers alike, so either can start first)::

    polls.events      durable topic exchange, routing key = event type ("vote.cast")
    <service>.events  durable queue of each consuming service, bound to the types it consumes
                      (contracts/events/registry.json), dead-lettering to polls.events.dlx
    polls.events.dlx  durable direct exchange for messages a consumer gave up on
    <service>.events.dlq  durable queue bound to the DLX with routing key "<service>.events.dlq"

Each message is a Celery task message for ``servicekit.events.handle`` whose only argument is the
event envelope, so every consuming service's Celery worker (``-Q <service>.events``) runs it with
``acks_late``, reject-on-worker-lost and prefetch 1. Messages are persistent (delivery_mode 2); on
RabbitMQ the connection uses publisher confirms (``confirm_publish``) so ``publish_event`` returns
only once the broker has the message.

Virtual transports (kombu ``filesystem://``) keep exchange bindings per process: ``declare_topology``
declares every consumer queue from the registry on the publishing channel, so fan-out works there too.

Names carry an optional prefix (``EVENTS_NAMESPACE`` env, e.g. ``events-test``) so concurrent test
runs on one RabbitMQ never share queues::

    from servicekit.events.bus import celery_queues
    CELERY_TASK_QUEUES = celery_queues("votes")
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from typing import Any

from kombu import Exchange, Queue, binding

from servicekit.events.registry import Registry, get_registry

HANDLE_TASK = "servicekit.events.handle"
RELAY_TASK = "servicekit.events.relay"


def namespace() -> str:
    ns = os.environ.get("EVENTS_NAMESPACE", "")
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


def task_message(app: Any, envelope: dict[str, Any], *, attempt: int = 0, countdown: float | None = None) -> tuple:
    """``(headers, properties, body)`` of a ``servicekit.events.handle`` Celery message for ``envelope``."""
    message = app.amqp.as_task_v2(
        str(uuid.uuid4()),
        HANDLE_TASK,
        args=(envelope,),
        kwargs={"attempt": attempt} if attempt else {},
        countdown=countdown,
        ignore_result=True,
        argsrepr=f"({envelope.get('type')} {envelope.get('id')})",
    )
    headers, properties, body, _ = message
    headers = dict(headers, event_id=envelope.get("id"), event_type=envelope.get("type"))
    if envelope.get("traceparent"):
        headers["traceparent"] = envelope["traceparent"]
    return headers, properties, body


def publish_event(producer: Any, app: Any, envelope: dict[str, Any], *, registry: Registry | None = None) -> None:
    """Publish ``envelope`` to the events exchange (routing key = type); returns after the broker confirmed."""
    headers, properties, body = task_message(app, envelope)
    producer.publish(
        body,
        exchange=events_exchange(registry),
        routing_key=envelope["type"],
        serializer="json",
        headers=headers,
        delivery_mode=2,
        retry=False,
        **properties,
    )


def publish_to_queue(
    producer: Any,
    app: Any,
    envelope: dict[str, Any],
    queue_name: str,
    *,
    attempt: int = 0,
    countdown: float | None = None,
) -> None:
    """Send ``envelope`` to one queue only (retries, replays): the default exchange routes by queue name."""
    headers, properties, body = task_message(app, envelope, attempt=attempt, countdown=countdown)
    producer.publish(
        body,
        exchange="",
        routing_key=queue_name,
        serializer="json",
        headers=headers,
        delivery_mode=2,
        retry=False,
        **properties,
    )


CONNECT_TIMEOUT = 2.0
_local = threading.local()


def celery_app() -> Any:
    from celery import current_app

    return current_app._get_current_object()


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
