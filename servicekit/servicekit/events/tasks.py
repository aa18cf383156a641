"""Celery tasks of the event machinery (registered in every service through ``servicekit/tasks.py``).

- ``servicekit.events.handle(envelope, attempt=0)`` -- consume one event (``<service>.events``)
- ``servicekit.events.relay(linger=None)``          -- publish pending outbox rows (``<service>.relay``)
- ``servicekit.events.prune()``                     -- drop old sent outbox and inbox rows
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

from servicekit.conf import servicekit_settings
from servicekit.events.bus import HANDLE_TASK, RELAY_TASK


@shared_task(name=HANDLE_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def handle_event(envelope: Any, attempt: int = 0) -> list[str]:
    from servicekit.events.consumer import consume

    return consume(envelope, attempt=attempt)


@shared_task(name=RELAY_TASK, ignore_result=True)
def relay(linger: float | None = None) -> int:
    from servicekit.events.relay import relay_pending

    return relay_pending(linger=servicekit_settings.EVENTS_RELAY_LINGER if linger is None else linger)


@shared_task(name="servicekit.events.prune", ignore_result=True)
def prune() -> dict[str, int]:
    from servicekit.events.models import InboxEvent
    from servicekit.events.relay import prune_outbox

    cutoff = timezone.now() - timedelta(days=servicekit_settings.EVENTS_INBOX_RETENTION_DAYS)
    inbox, _ = InboxEvent.objects.filter(received_at__lt=cutoff).delete()
    return {"outbox": prune_outbox(), "inbox": inbox}
