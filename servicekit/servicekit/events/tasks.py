"""Celery tasks of the event machinery (registered in every service through ``servicekit/tasks.py``).

- ``servicekit.events.handle_batch(envelopes, attempt=0)`` -- consume one message: a list of envelopes
  (``<service>.events``; ``consumer.consume_batch``)
- ``servicekit.events.handle(envelope, attempt=0)``         -- consume one envelope (messages of earlier
  releases; ``consumer.consume``)
- ``servicekit.events.relay(linger=None)``                  -- publish pending outbox rows (``<service>.relay``)
- ``servicekit.events.prune()``                             -- drop old sent outbox and inbox rows

Database connections are kept across tasks and recycled as Django recycles them across requests.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections
from django.utils import timezone

from servicekit.conf import servicekit_settings
from servicekit.events.bus import HANDLE_BATCH_TASK, HANDLE_TASK, RELAY_TASK


@task_prerun.connect
@task_postrun.connect
def _recycle_old_connections(task: Any = None, **kwargs: Any) -> None:
    """Around every task, what Django does around every request: drop a connection that broke or
    outlived ``CONN_MAX_AGE`` (and health-check the kept one at its next use), instead of Celery's
    default of reconnecting for every task (see ``CELERY_DB_REUSE_MAX`` in ``servicekit.settings``).
    Not for a task run eagerly (``.apply()``): it runs inside its caller's transaction."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()


@shared_task(name=HANDLE_BATCH_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def handle_batch(envelopes: Any, attempt: int = 0) -> None:
    # Returns nothing: Celery formats every return value (saferepr) even when results are ignored.
    from servicekit.events.consumer import consume_batch

    consume_batch(envelopes, attempt=attempt)


@shared_task(name=HANDLE_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def handle_event(envelope: Any, attempt: int = 0) -> None:
    from servicekit.events.consumer import consume

    consume(envelope, attempt=attempt)


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


def events_backlog(service: str | None = None) -> int:
    """Messages waiting in this service's event queue (0 when it has none or the broker cannot say)."""
    from servicekit.events import bus

    service = service or servicekit_settings.SERVICE_NAME
    with bus.connect() as conn:
        declared = conn.default_channel.queue_declare(queue=bus.events_queue_name(service), passive=True)
    return int(declared.message_count if hasattr(declared, "message_count") else declared[1])


@shared_task(name="servicekit.events.run_when_idle", ignore_result=True)
def run_when_idle(task: str, kwargs: dict[str, Any] | None = None) -> bool:
    """Run task ``task`` here only while this service's event queue is empty (beat entry for repairs).

    A projection repair (e.g. tally reconciliation) that runs while events are still queued would
    "repair" what those events are about to change and count them twice; it waits for a quiet moment.
    Returns whether the task ran.
    """
    import logging

    from celery import current_app

    backlog = events_backlog()
    if backlog:
        logging.getLogger(__name__).info("skipped while events are queued", extra={"task": task, "backlog": backlog})
        return False
    current_app.tasks[task](**(kwargs or {}))
    return True
