"""Events between services: transactional outbox → relay → RabbitMQ topic fan-out → idempotent inbox.

Producing (inside the service function's transaction)::

    from servicekit.events import emit
    emit("poll.opened", aggregate_id=str(poll.id), data={"id": str(poll.id), "owner_id": poll.owner_id,
         "status": "open", "closes_at": None, "question": poll.question})

Consuming (in ``<app>/events.py``, discovered at start-up)::

    from servicekit.events import Event, handles

    @handles("vote.cast")
    def on_vote_cast(event: Event) -> None: ...

Event types and their schemas: ``contracts/events/``. Modules: ``registry`` (types), ``outbox``
(``emit``), ``relay`` (publishing), ``bus`` (topology), ``inbox`` (handlers), ``consumer`` (retries,
dead letters), ``models`` (OutboxEvent, InboxEvent, DeadLetter), ``tasks`` (Celery tasks).
"""

import os

from servicekit.conf import servicekit_settings
from servicekit.events.event import Event
from servicekit.events.inbox import handlers_for, handles
from servicekit.events.outbox import OutsideTransaction, WrongProducer, emit
from servicekit.events.registry import InvalidEvent, UnknownEventType, get_registry

servicekit_settings.register_defaults(
    {
        # Validate every emitted payload against its JSON Schema (cheap; turn off only if profiling says so).
        "EVENTS_VALIDATE": True,
        # Request a relay run after each commit that emitted events (else only the beat sweep publishes).
        "EVENTS_RELAY_ON_COMMIT": True,
        # At most one relay request per process per this many seconds...
        "EVENTS_RELAY_REQUEST_INTERVAL": 0.1,
        # ...because a running relay keeps looking for new rows this long (must exceed the interval).
        "EVENTS_RELAY_LINGER": 0.5,
        # Seconds to stop requesting relays after the broker refused one.
        "EVENTS_BROKER_BACKOFF": 2.0,
        # Rows published per relay transaction.
        "EVENTS_RELAY_BATCH": 200,
        # Handler retries before dead-lettering, and the backoff base/cap in seconds.
        # (Environment variables of the same names override these defaults.)
        "EVENTS_MAX_RETRIES": int(os.environ.get("EVENTS_MAX_RETRIES", 5)),
        "EVENTS_RETRY_BACKOFF": float(os.environ.get("EVENTS_RETRY_BACKOFF", 1.0)),
        "EVENTS_RETRY_BACKOFF_MAX": float(os.environ.get("EVENTS_RETRY_BACKOFF_MAX", 60.0)),
        # Retention of sent outbox rows and inbox records.
        "EVENTS_OUTBOX_RETENTION_DAYS": 7,
        "EVENTS_INBOX_RETENTION_DAYS": 30,
    }
)

__all__ = [
    "Event",
    "emit",
    "handles",
    "handlers_for",
    "get_registry",
    "InvalidEvent",
    "UnknownEventType",
    "OutsideTransaction",
    "WrongProducer",
]
