"""Event handlers and the idempotent inbox that runs them.

A service declares handlers in ``<app>/events.py`` (imported automatically at start-up)::

    from servicekit.events import Event, handles
    from servicekit.replicas import poll_state, replica_apply, replica_apply_many

    @handles("poll.opened", "poll.closed")                 # one event at a time
    def on_poll_state(event: Event) -> None:
        replica_apply(PollReplica, id=event.aggregate_id, version=event.version,
                      **poll_state(event.data, event.type))

    @handles("vote.cast", "vote.changed", "vote.retracted", batch=True)   # every new event of a batch
    def on_votes(events: list[Event]) -> None:
        replica_apply_many(VoteProjection, [projection_row(e) for e in events])

``apply_batch(events)`` (what the consumer calls for one delivered message) runs in ONE
``transaction.atomic()``: one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` records an
``InboxEvent`` (event id, handler) row for every pair, and only the pairs it inserted run: each
per-event handler once per new event, each batch handler once with its new events in order. The
effects and the records commit together, so a redelivered or duplicated event changes nothing (a
concurrent duplicate waits on the unique index, then finds the row). A handler raises to fail the
transaction; the consumer then applies the events one at a time (a batch handler gets a one-element
list) and retries only the failing one. Handlers may call ``emit()``, must be idempotent and must not
depend on the order of events of different messages (compare versions: ``servicekit.replicas``).
The inbox handler name is ``module.qualname`` for both kinds. Tests apply one event through the same
path with ``apply_event(event)`` (a one-event batch; returns the names of the handlers that ran).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from prometheus_client import Counter

from servicekit.conf import servicekit_settings
from servicekit.events.event import Event
from servicekit.events.registry import get_registry

# Counted per attempt: a batch that failed and is applied again event by event counts its duplicates twice.
DUPLICATES = Counter(
    "events_inbox_duplicates_total", "Delivered events skipped because the inbox had applied them.", ["service"]
)

Handler = Callable[..., None]  # func(event: Event), or func(events: list[Event]) for batch=True

# event type -> {handler name: (func, batch)} in registration order
_handlers: dict[str, dict[str, tuple[Handler, bool]]] = {}
# event type -> ((name, func, batch), ...): what apply_batch looks up per event
_plans: dict[str, tuple[tuple[str, Handler, bool], ...]] = {}

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_ROWS_PER_STATEMENT = 2000  # 4 parameters a row: well under SQLite's 32,766


def handler_name(func: Handler) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def handles(*event_types: str, batch: bool = False) -> Callable[[Handler], Handler]:
    """Register the decorated function as a handler of each of ``event_types`` (registered types only).

    ``batch=False``: ``func(event: Event)``, once per new event. ``batch=True``: ``func(events:
    list[Event])``, once per delivered batch with its not-yet-applied events of those types, in order.
    """
    registry = get_registry()
    for event_type in event_types:
        registry.get(event_type)  # UnknownEventType for a typo, at import time

    def decorator(func: Handler) -> Handler:
        for event_type in event_types:
            _handlers.setdefault(event_type, {})[handler_name(func)] = (func, batch)
        _plans.clear()
        return func

    return decorator


def handlers_for(event_type: str) -> list[Handler]:
    """The handlers (per-event and batch) registered for ``event_type`` in this process, in registration order."""
    return [func for func, _batch in _handlers.get(event_type, {}).values()]


def is_batch_handler(func: Handler) -> bool:
    """Whether ``func`` was registered with ``@handles(..., batch=True)``."""
    name = handler_name(func)
    return any(handlers.get(name, (None, False))[1] for handlers in _handlers.values())


def registered_types() -> list[str]:
    return sorted(t for t, hs in _handlers.items() if hs)


def unregister(func: Handler) -> None:
    """Remove ``func`` from every type (tests)."""
    name = handler_name(func)
    for handlers in _handlers.values():
        handlers.pop(name, None)
    _plans.clear()


def _plan(event_type: str) -> tuple[tuple[str, Handler, bool], ...]:
    plan = _plans.get(event_type)
    if plan is None:
        plan = _plans[event_type] = tuple((n, f, b) for n, (f, b) in _handlers.get(event_type, {}).items())
    return plan


def event_key(event_id: str) -> str:
    """The canonical text of an event id (lower case, dashes): how inbox rows are matched."""
    return event_id if _CANONICAL_UUID.match(event_id) else str(uuid.UUID(event_id))


def record_inbox(pairs: Iterable[tuple[str, str, str]]) -> set[tuple[str, str]]:
    """Insert InboxEvent rows for ``(event id, handler, event type)``, skipping those that exist;
    returns the ``(canonical event id, handler)`` pairs it inserted (see ``_insert_inbox``)."""
    return _insert_inbox([(event_key(event_id), handler, event_type) for event_id, handler, event_type in pairs])


def _insert_inbox(pairs: list[tuple[str, str, str]]) -> set[tuple[str, str]]:
    """Insert InboxEvent rows for ``(canonical event id, handler, event type)`` in one statement (per
    2,000 rows on SQLite), skipping those that exist; returns the ``(event id, handler)`` pairs inserted.

    Raw SQL: ``INSERT ... SELECT ... FROM unnest(arrays)`` on PostgreSQL, ``INSERT ... VALUES`` on SQLite
    (>= 3.35), both ``ON CONFLICT DO NOTHING RETURNING``. A concurrent transaction inserting the same
    pair makes it wait on the unique index, then skip the pair.
    """
    from servicekit.events.models import InboxEvent

    postgres = connection.vendor == "postgresql"
    if not pairs:
        return set()
    rows = pairs
    back: dict[str, str] = {}
    if not postgres:  # a UUIDField is char(32) hex on SQLite
        rows = []
        for key, handler, event_type in pairs:
            stored = key.replace("-", "")
            back[stored] = key
            rows.append((stored, handler, event_type))
    table = connection.ops.quote_name(InboxEvent._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    returning = " ON CONFLICT (event_id, handler) DO NOTHING RETURNING event_id, handler"
    inserted: set[tuple[str, str]] = set()
    with connection.cursor() as cursor:
        if postgres:
            # Three arrays instead of 3 x n placeholders: the statement stays the same size.
            ids, handlers, types = zip(*rows, strict=True)
            cursor.execute(
                f"INSERT INTO {table} (event_id, handler, event_type, received_at) "
                "SELECT e, h, t, %s FROM unnest(%s::uuid[], %s::text[], %s::text[]) AS r(e, h, t)" + returning,
                [now, list(ids), list(handlers), list(types)],
            )
            return {(str(event_id), handler) for event_id, handler in cursor.fetchall()}
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            params: list[Any] = []
            for stored, handler, event_type in chunk:
                params += (stored, handler, event_type, now)
            cursor.execute(
                f"INSERT INTO {table} (event_id, handler, event_type, received_at) VALUES "
                + ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
                + returning,
                params,
            )
            for event_id, handler in cursor.fetchall():
                inserted.add((back[event_id], handler))
    return inserted


def apply_batch(events: list[Event]) -> dict[str, list[str]]:
    """Apply every handler to the events not yet applied, in one transaction (see the module docs).

    Returns ``{event.id: [names of the handlers that ran]}`` for the events something ran for; raises
    whatever a handler (or the database) raised, with everything rolled back.
    """
    work: list[tuple[str, Event, tuple[tuple[str, Handler, bool], ...]]] = []
    seen: set[str] = set()
    for event in events:
        plan = _plan(event.type)
        if not plan:
            continue
        key = event_key(event.id)
        if key in seen:  # the same event twice in one batch: once is enough
            continue
        seen.add(key)
        work.append((key, event, plan))
    if not work:
        return {}
    applied: dict[str, list[str]] = {}
    with transaction.atomic():
        # The inbox rows first: duplicates are filtered out before any handler runs. Sorted, so two
        # transactions inserting overlapping batches wait for each other in the same order.
        new = _insert_inbox(sorted((key, name, event.type) for key, event, plan in work for name, _f, _b in plan))
        duplicates = len(work) - len({key for key, _name in new})
        if duplicates:
            DUPLICATES.labels(servicekit_settings.SERVICE_NAME).inc(duplicates)
        if not new:
            return {}
        # Each handler in registration order: a per-event handler for each of its new events, a batch
        # handler once with all of them (in batch order).
        calls: dict[str, tuple[Handler, bool, list[Event]]] = {}
        for key, event, plan in work:
            for name, func, batch in plan:
                if (key, name) in new:
                    calls.setdefault(name, (func, batch, []))[2].append(event)
        for name, (func, batch, todo) in calls.items():
            if batch:
                func(todo)
            else:
                for event in todo:
                    func(event)
            for event in todo:
                applied.setdefault(event.id, []).append(name)
    return applied


def apply_event(event: Event) -> list[str]:
    """Apply every handler of ``event.type`` to this one event (one transaction); returns the names of
    those that ran (not duplicates). A batch handler is called with ``[event]``."""
    return apply_batch([event]).get(event.id, [])


def apply_handler(func: Handler, event: Event) -> bool:
    """Run ``func`` for ``event`` once per event id (``[event]`` for a batch handler); returns False if
    it had already been applied."""
    name = handler_name(func)
    with transaction.atomic():
        if not record_inbox([(event.id, name, event.type)]):
            return False
        func([event]) if is_batch_handler(func) else func(event)
    return True
