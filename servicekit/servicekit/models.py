"""Models of the ``servicekit`` app, migrated into every service's own database.

The event tables live in ``servicekit.events.models``; they are imported here so Django finds them.
"""

from servicekit.events.models import DeadLetter, InboxEvent, OutboxEvent

__all__ = ["OutboxEvent", "InboxEvent", "DeadLetter"]
