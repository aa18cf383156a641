"""Events between services: transactional outbox → batching relay → RabbitMQ topic fan-out → batched idempotent inbox.

Producing (inside the service function's transaction; ``version`` is the aggregate's new version)::

    from servicekit.events import emit
    emit("poll.opened", aggregate_id=str(poll.id), version=poll.version,
         data={"id": str(poll.id), "owner_id": poll.owner_id, "status": "open", "closes_at": None,
               "question": poll.question})

Consuming (in ``<app>/events.py``, discovered at start-up)::

    from servicekit.events import Event, handles

    @handles("poll.opened")                                  # one event at a time
    def on_poll_opened(event: Event) -> None: ...

    @handles("vote.cast", "vote.changed", batch=True)       # the new events of a delivered batch
    def on_votes(events: list[Event]) -> None: ...

The pipeline: ``emit`` writes an outbox row with the change. The relay (``servicekit.events.relay``
task) takes up to ``EVENTS_RELAY_BATCH`` pending rows per round, publishes one
``servicekit.events.handle_batch`` message per event type (routing key = the type) and marks them
sent once the broker confirmed the round; batches grow with load and are a single event when idle.
Each consuming service's worker applies a message in one transaction (one inbox insert for all event
ids, then the handlers for the new ones) and acknowledges it after commit; a poison or failing event
is dead-lettered or retried alone. Redelivery changes nothing.

Event types and their schemas: ``contracts/events/``. Modules: ``registry`` (types, validation),
``outbox`` (``emit``, relay requests), ``relay`` (publishing), ``bus`` (topology, messages),
``inbox`` (handlers, ``apply_batch``), ``consumer`` (``consume_batch``: validation, retries, dead
letters), ``models`` (OutboxEvent, InboxEvent, DeadLetter), ``tasks`` (Celery tasks),
``deadletters`` (list, replay).
"""

from servicekit.conf import servicekit_settings
from servicekit.env import env
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
        # Rows published per relay round (at most; one message per event type in it).
        "EVENTS_RELAY_BATCH": 200,
        # Under load, a relay round starts at most this often (seconds): what commits meanwhile goes in
        # the next round, so batches grow with load. Idle, a new event is seen within ~20 ms.
        "EVENTS_RELAY_ROUND_INTERVAL": env.float("EVENTS_RELAY_ROUND_INTERVAL", default=0.05),
        # Handler retries before dead-lettering, and the backoff base/cap in seconds.
        # (Environment variables of the same names override these defaults.)
        "EVENTS_MAX_RETRIES": env.int("EVENTS_MAX_RETRIES", default=5),
        "EVENTS_RETRY_BACKOFF": env.float("EVENTS_RETRY_BACKOFF", default=1.0),
        "EVENTS_RETRY_BACKOFF_MAX": env.float("EVENTS_RETRY_BACKOFF_MAX", default=60.0),
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
