"""Consuming a message from ``<service>.events``: validate, apply the batch in one transaction, retry, dead-letter.

    from servicekit.events.consumer import consume_batch
    result = consume_batch([envelope, ...], attempt=0)   # the body of servicekit.events.handle_batch
    result.applied        # {event id: [handler names that ran]}
    result.duplicates, result.retried, result.dead_lettered   # event ids

For one delivered message (the Celery task is ``acks_late`` and ``reject_on_worker_lost`` with
prefetch 1: a worker killed mid-batch gets the whole message again, and the inbox makes that
harmless):

1. Every envelope is validated; an invalid one, or one of an unknown type, is dead-lettered alone and
   the others go on.
2. The valid ones are applied in ONE transaction (``inbox.apply_batch``: one inbox insert for all
   ids, then the handlers for the new ones). If that raises, each event is applied in its own
   transaction instead, so one failing event cannot sink its batch.
3. An event whose handler failed is re-published alone (a one-event batch) to this service's queue
   only, after ``EVENTS_RETRY_BACKOFF * 2**attempt`` seconds (jittered, capped at
   ``EVENTS_RETRY_BACKOFF_MAX``) with ``attempt + 1``; when ``attempt`` has reached
   ``EVENTS_MAX_RETRIES`` it is dead-lettered alone instead.
4. Dead-lettering publishes the envelope alone to ``<service>.events.dlq`` (default exchange) and
   stores a ``DeadLetter`` row (admin, ``list_dead_letters``, ``replay_dead_letters``).
5. The message is acknowledged when the task returns, after every commit. If a retry or a dead
   letter cannot be published (broker gone), ``Reject(requeue=True)`` hands the whole message back;
   what was applied is a duplicate on redelivery.

``consume(envelope, attempt=n)`` is the body of ``servicekit.events.handle`` (one envelope: messages
of earlier releases, contract tests): the same, except that a dead letter is recorded and
``Reject(requeue=False)`` raised, so RabbitMQ moves that message to the DLQ itself.

Metrics: ``events_consumed_total{service,type,outcome}`` (``applied``, ``duplicate_or_unhandled``,
``retried``, ``dead_lettered``), the histogram ``events_batch_size{service}`` (envelopes per message)
and ``events_consumer_lag_seconds{service,type}`` (the event's ``occurred_at``, the producer's clock,
until this service applied it).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import Counter as Tally
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import Reject
from prometheus_client import Counter, Histogram

from servicekit import tracing
from servicekit.conf import servicekit_settings
from servicekit.events import bus
from servicekit.events.event import Event
from servicekit.events.inbox import apply_batch
from servicekit.events.registry import InvalidEvent, UnknownEventType, get_registry

logger = logging.getLogger(__name__)

CONSUMED = Counter(
    "events_consumed_total", "Events taken from this service's queue, by outcome.", ["service", "type", "outcome"]
)
BATCH_SIZE = Histogram(
    "events_batch_size",
    "Envelopes per message taken from this service's queue.",
    ["service"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
LAG = Histogram(
    "events_consumer_lag_seconds",
    "From an event's occurred_at (producer's clock) until this service applied it.",
    ["service", "type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
)

# What a malformed envelope raises while being validated or read.
_POISON = (InvalidEvent, UnknownEventType, KeyError, TypeError, AttributeError, ValueError)


@dataclass
class BatchResult:
    """What ``consume_batch`` did with each envelope of a message."""

    applied: dict[str, list[str]] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    dead_lettered: list[str | None] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "applied": len(self.applied),
            "duplicate_or_unhandled": len(self.duplicates),
            "retried": len(self.retried),
            "dead_lettered": len(self.dead_lettered),
        }


def backoff(attempt: int) -> float:
    """Seconds before retry number ``attempt + 1``: exponential, capped, with full jitter on the upper half."""
    base = servicekit_settings.EVENTS_RETRY_BACKOFF * (2**attempt)
    delay = min(base, servicekit_settings.EVENTS_RETRY_BACKOFF_MAX)
    return float(delay / 2 + random.uniform(0, delay / 2))


def _type_of(envelope: Any) -> str:
    return str(envelope.get("type") or "?")[:100] if isinstance(envelope, dict) else "?"


def _id_of(envelope: Any) -> str | None:
    return envelope.get("id") if isinstance(envelope, dict) else None


def record_dead_letter(envelope: Any, error: BaseException | str, attempts: int) -> Any:
    """Store a ``DeadLetter`` row for ``envelope`` (own transaction); returns it."""
    from servicekit.events.models import DeadLetter

    envelope_dict = envelope if isinstance(envelope, dict) else {"raw": repr(envelope)[:10000]}
    event_id = envelope_dict.get("id")
    try:
        event_id = str(uuid.UUID(str(event_id))) if event_id else None
    except ValueError:
        event_id = None
    return DeadLetter.objects.create(
        event_id=event_id,
        event_type=str(envelope_dict.get("type") or "")[:100],
        queue=bus.events_queue_name(servicekit_settings.SERVICE_NAME),
        envelope=envelope_dict,
        error=(repr(error) if isinstance(error, BaseException) else str(error))[:5000],
        attempts=attempts,
    )


def _log_dead_letter(envelope: Any, error: BaseException | str, attempts: int) -> None:
    logger.error(
        "event dead-lettered",
        extra={
            "event_type": _type_of(envelope),
            "event_id": _id_of(envelope),
            "error": repr(error)[:500],
            "attempts": attempts,
        },
    )


def _validate(envelopes: list[Any]) -> tuple[list[tuple[Any, Event]], list[tuple[Any, Exception]]]:
    """``(valid (envelope, event) pairs, poison (envelope, error) pairs)``, both in batch order."""
    registry = get_registry()
    valid: list[tuple[Any, Event]] = []
    poison: list[tuple[Any, Exception]] = []
    for envelope in envelopes:
        try:
            registry.validate_envelope(envelope)
            valid.append((envelope, Event.from_envelope(envelope)))
        except _POISON as exc:
            poison.append((envelope, exc))
    return valid, poison


def _apply(valid: list[tuple[Any, Event]]) -> tuple[dict[str, list[str]], list[tuple[Any, Event, Exception]]]:
    """Apply in one transaction, else one event per transaction: ``(applied, failed)``."""
    try:
        return apply_batch([event for _envelope, event in valid]), []
    except Exception as exc:  # a handler (or the database) failed: find out which event
        if len(valid) == 1:
            return {}, [(valid[0][0], valid[0][1], exc)]
        logger.warning(
            "event batch failed; applying its events one at a time",
            extra={"count": len(valid), "event_type": valid[0][1].type, "error": repr(exc)[:500]},
        )
    applied: dict[str, list[str]] = {}
    failed: list[tuple[Any, Event, Exception]] = []
    for envelope, event in valid:
        try:
            applied.update(apply_batch([event]))
        except Exception as exc:  # this one is retried alone
            failed.append((envelope, event, exc))
    return applied, failed


def _apply_traced(
    valid: list[tuple[Any, Event]], service: str
) -> tuple[dict[str, list[str]], list[tuple[Any, Event, Exception]]]:
    """``_apply`` inside the batch span, each event's outcome on its own span (``tracing.ConsumeSpans``)."""
    events = [event for _envelope, event in valid]
    spans = tracing.ConsumeSpans(events, service=service)
    failed: list[tuple[Any, Event, Exception]] = []
    try:
        with spans.applying():
            applied, failed = _apply(valid)
        failed_ids = {id(event) for _envelope, event, _exc in failed}
        for event in events:
            if id(event) not in failed_ids:
                spans.applied(event, "applied" if event.id in applied else "duplicate_or_unhandled")
    finally:
        spans.end(event for _envelope, event, _exc in failed)
    return applied, failed


def _publish_alone(retries: list[tuple[Any, Exception]], dead: list[Any], attempt: int) -> None:
    """Re-publish each of ``retries`` alone to this service's queue (with backoff, ``attempt + 1``)
    and each of ``dead`` alone to its DLQ; ``Reject(requeue=True)`` if the broker cannot take them."""
    service = servicekit_settings.SERVICE_NAME
    app = bus.celery_app()
    try:
        with bus.connect(app) as conn:
            producer = conn.Producer()
            if dead:
                bus.dead_letter_queue(service)(producer.channel).declare()
            for envelope, exc in retries:
                delay = backoff(attempt)
                logger.warning(
                    "event handler failed; retrying",
                    extra={
                        "event_type": _type_of(envelope),
                        "event_id": _id_of(envelope),
                        "attempt": attempt + 1,
                        "retry_in": round(delay, 2),
                        "error": repr(exc)[:500],
                    },
                )
                bus.publish_to_queue(
                    producer, envelope, bus.events_queue_name(service), attempt=attempt + 1, countdown=delay
                )
            for envelope in dead:
                bus.publish_to_queue(producer, envelope, bus.dead_letter_queue_name(service))
    except Exception as publish_exc:  # broker gone: hand the message back instead of losing it
        logger.warning("retry publish failed; requeueing", extra={"error": repr(publish_exc)[:300]})
        raise Reject("retry publish failed", requeue=True) from publish_exc


def consume_batch(envelopes: Any, *, attempt: int = 0) -> BatchResult:
    """Handle one delivered message of envelopes (see the module docs). Raises ``Reject(requeue=True)``
    only when a retry or dead letter could not be published."""
    service = servicekit_settings.SERVICE_NAME
    if not isinstance(envelopes, list):
        envelopes = [envelopes]  # a single envelope, or garbage (dead-lettered below)
    BATCH_SIZE.labels(service).observe(len(envelopes))
    valid, poison = _validate(envelopes)
    if valid and tracing.ENABLED:
        applied, failed = _apply_traced(valid, service)
    else:
        applied, failed = _apply(valid) if valid else ({}, [])

    give_up = attempt >= servicekit_settings.EVENTS_MAX_RETRIES
    retries = [] if give_up else [(envelope, exc) for envelope, _event, exc in failed]
    dead = [(envelope, exc) for envelope, exc in poison]
    if give_up:
        dead += [(envelope, exc) for envelope, _event, exc in failed]
    if retries or dead:
        _publish_alone(retries, [envelope for envelope, _exc in dead], attempt)
        for envelope, exc in dead:
            record_dead_letter(envelope, exc, attempt + 1)
            _log_dead_letter(envelope, exc, attempt + 1)

    result = BatchResult(applied=applied)
    outcomes: Tally[tuple[str, str]] = Tally()
    failed_ids = {id(event) for _envelope, event, _exc in failed}
    now = time.time()
    for _envelope, event in valid:
        if id(event) in failed_ids:
            continue
        if event.id in applied:
            outcomes[event.type, "applied"] += 1
            LAG.labels(service, event.type).observe(max(now - event.occurred.timestamp(), 0.0))
        else:
            result.duplicates.append(event.id)
            outcomes[event.type, "duplicate_or_unhandled"] += 1
    for _envelope, event, _exc in failed:
        (result.dead_lettered if give_up else result.retried).append(event.id)
        outcomes[event.type, "dead_lettered" if give_up else "retried"] += 1
    for envelope, _exc in poison:
        result.dead_lettered.append(_id_of(envelope))
        outcomes[_type_of(envelope), "dead_lettered"] += 1
    for (event_type, outcome), n in outcomes.items():
        CONSUMED.labels(service, event_type, outcome).inc(n)
    return result


def _dead_letter(envelope: Any, error: BaseException | str, attempts: int, event_type: str) -> None:
    record_dead_letter(envelope, error, attempts)
    CONSUMED.labels(servicekit_settings.SERVICE_NAME, event_type, "dead_lettered").inc()
    _log_dead_letter(envelope, error, attempts)
    raise Reject(f"dead-lettered: {error!r}"[:500], requeue=False)


def consume(envelope: Any, *, attempt: int = 0) -> list[str]:
    """Handle one delivered envelope (``servicekit.events.handle``); returns the handlers applied.
    Raises ``Reject(requeue=False)`` to dead-letter it (the broker moves the message to the DLQ)."""
    service = servicekit_settings.SERVICE_NAME
    event_type = _type_of(envelope)
    try:
        get_registry().validate_envelope(envelope)
        event = Event.from_envelope(envelope)
    except _POISON as exc:
        _dead_letter(envelope, exc, attempt + 1, event_type)
    try:
        if tracing.ENABLED:
            found, failed = _apply_traced([(envelope, event)], service)
            if failed:
                raise failed[0][2]
            applied = found.get(event.id, [])
        else:
            applied = apply_batch([event]).get(event.id, [])
    except Exception as exc:  # a handler failed: retry later or give up
        if attempt >= servicekit_settings.EVENTS_MAX_RETRIES:
            _dead_letter(envelope, exc, attempt + 1, event_type)
        _publish_alone([(envelope, exc)], [], attempt)
        CONSUMED.labels(service, event_type, "retried").inc()
        return []
    CONSUMED.labels(service, event_type, "applied" if applied else "duplicate_or_unhandled").inc()
    if applied:
        LAG.labels(service, event_type).observe(max(time.time() - event.occurred.timestamp(), 0.0))
    return applied
