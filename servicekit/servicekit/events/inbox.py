"""Event handlers and the idempotent inbox that runs them.

A service declares handlers in ``<app>/events.py`` (imported automatically at start-up)::

    from servicekit.events import Event, handles

    @handles("vote.cast")
    def on_vote_cast(event: Event) -> None:
        Choice.objects.filter(id=event.data["choice_id"]).update(votes=F("votes") + 1)

The framework runs each handler inside ``transaction.atomic()`` together with an ``InboxEvent``
(event id, handler) row under a unique constraint: the effect and the record commit together, so a
redelivered or duplicated event changes nothing. A handler raises to have the event retried (with
backoff, then dead-lettered); it may call ``emit()``. One event type may have several handlers;
each is applied (and recorded) separately.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

from django.db import IntegrityError, transaction

from servicekit.events.event import Event
from servicekit.events.registry import get_registry

logger = logging.getLogger(__name__)

Handler = Callable[[Event], None]

_handlers: dict[str, dict[str, Handler]] = defaultdict(dict)


def handler_name(func: Handler) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as a handler of each of ``event_types`` (registered types only)."""
    registry = get_registry()
    for event_type in event_types:
        registry.get(event_type)  # UnknownEventType for a typo, at import time

    def decorator(func: Handler) -> Handler:
        for event_type in event_types:
            _handlers[event_type][handler_name(func)] = func
        return func

    return decorator


def handlers_for(event_type: str) -> list[Handler]:
    """The handlers registered for ``event_type`` in this process, in registration order."""
    return list(_handlers.get(event_type, {}).values())


def registered_types() -> list[str]:
    return sorted(t for t, hs in _handlers.items() if hs)


def unregister(func: Handler) -> None:
    """Remove ``func`` from every type (tests)."""
    name = handler_name(func)
    for handlers in _handlers.values():
        handlers.pop(name, None)


def apply_handler(func: Handler, event: Event) -> bool:
    """Run ``func(event)`` once per event id; returns False if it had already been applied."""
    from servicekit.events.models import InboxEvent

    name = handler_name(func)
    try:
        with transaction.atomic():
            # The inbox row first: a duplicate (redelivered, or concurrent: it waits on the unique
            # index) fails right here, before the handler runs, and the whole transaction rolls back.
            InboxEvent.objects.create(event_id=event.id, handler=name, event_type=event.type)
            func(event)
    except IntegrityError:
        if InboxEvent.objects.filter(event_id=event.id, handler=name).exists():
            return False
        raise
    return True


def apply_event(event: Event) -> list[str]:
    """Apply every handler of ``event.type``; returns the names of those that ran (not duplicates)."""
    applied = []
    for func in handlers_for(event.type):
        if apply_handler(func, event):
            applied.append(handler_name(func))
    return applied
