"""Consuming one message from ``<service>.events``: validate, apply handlers, retry, dead-letter.

``consume(envelope, attempt=n)`` is the body of the Celery task ``servicekit.events.handle``
(``acks_late``, ``reject_on_worker_lost``, prefetch 1: a worker killed mid-event gets it redelivered,
and the inbox makes the redelivery harmless).

- Invalid envelope or unknown type (a poison message): dead-lettered at once.
- A handler raises: the event is re-sent to this service's queue only, after
  ``EVENTS_RETRY_BACKOFF * 2**attempt`` seconds (jittered, capped at ``EVENTS_RETRY_BACKOFF_MAX``),
  up to ``EVENTS_MAX_RETRIES`` times; then dead-lettered.
- Dead-lettering stores a ``DeadLetter`` row (admin, ``list_dead_letters``, ``replay_dead_letters``)
  and rejects the message without requeue, so RabbitMQ moves it to ``<service>.events.dlq``.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery.exceptions import Reject
from prometheus_client import Counter

from servicekit.conf import servicekit_settings
from servicekit.events import bus
from servicekit.events.event import Event
from servicekit.events.inbox import apply_event
from servicekit.events.registry import InvalidEvent, UnknownEventType, get_registry

logger = logging.getLogger(__name__)

CONSUMED = Counter(
    "events_consumed_total", "Events taken from this service's queue, by outcome.", ["service", "type", "outcome"]
)


def backoff(attempt: int) -> float:
    """Seconds before retry number ``attempt + 1``: exponential, capped, with full jitter on the upper half."""
    base = servicekit_settings.EVENTS_RETRY_BACKOFF * (2**attempt)
    delay = min(base, servicekit_settings.EVENTS_RETRY_BACKOFF_MAX)
    return delay / 2 + random.uniform(0, delay / 2)


def record_dead_letter(envelope: Any, error: BaseException | str, attempts: int) -> Any:
    """Store a ``DeadLetter`` row for ``envelope`` (own transaction); returns it."""
    from servicekit.events.models import DeadLetter

    envelope_dict = envelope if isinstance(envelope, dict) else {"raw": repr(envelope)[:10000]}
    event_id = envelope_dict.get("id")
    try:
        import uuid

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


def _dead_letter(envelope: Any, error: BaseException | str, attempts: int, event_type: str) -> None:
    service = servicekit_settings.SERVICE_NAME
    record_dead_letter(envelope, error, attempts)
    CONSUMED.labels(service, event_type, "dead_lettered").inc()
    logger.error(
        "event dead-lettered", extra={"event_type": event_type, "error": repr(error)[:500], "attempts": attempts}
    )
    raise Reject(f"dead-lettered: {error!r}"[:500], requeue=False)


def consume(envelope: Any, *, attempt: int = 0) -> list[str]:
    """Handle one delivered envelope; returns the handlers applied. Raises ``Reject`` to dead-letter."""
    service = servicekit_settings.SERVICE_NAME
    event_type = envelope.get("type", "?") if isinstance(envelope, dict) else "?"
    try:
        get_registry().validate_envelope(envelope)
        event = Event.from_envelope(envelope)
    except (InvalidEvent, UnknownEventType, KeyError, TypeError, AttributeError) as exc:
        _dead_letter(envelope, exc, attempt + 1, str(event_type)[:100])
    try:
        applied = apply_event(event)
    except Exception as exc:  # a handler failed: retry later or give up
        if attempt >= servicekit_settings.EVENTS_MAX_RETRIES:
            _dead_letter(envelope, exc, attempt + 1, event_type)
        delay = backoff(attempt)
        logger.warning(
            "event handler failed; retrying",
            extra={
                "event_type": event_type,
                "event_id": envelope.get("id"),
                "attempt": attempt + 1,
                "retry_in": round(delay, 2),
                "error": repr(exc)[:500],
            },
        )
        try:
            with bus.connect() as conn:
                bus.publish_to_queue(
                    conn.Producer(),
                    bus.celery_app(),
                    envelope,
                    bus.events_queue_name(service),
                    attempt=attempt + 1,
                    countdown=delay,
                )
        except Exception as publish_exc:  # broker gone: hand the message back instead of losing it
            logger.warning("retry publish failed; requeueing", extra={"error": repr(publish_exc)[:300]})
            raise Reject("retry publish failed", requeue=True) from publish_exc
        CONSUMED.labels(service, event_type, "retried").inc()
        return []
    CONSUMED.labels(service, event_type, "applied" if applied else "duplicate_or_unhandled").inc()
    return applied
