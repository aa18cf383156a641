"""Celery tasks of servicekit, found by ``app.autodiscover_tasks()`` because ``servicekit`` is an installed app."""

from servicekit.audit import purge as purge_audit
from servicekit.events.tasks import handle_batch, handle_event, prune, relay

__all__ = ["handle_batch", "handle_event", "relay", "prune", "purge_audit"]
