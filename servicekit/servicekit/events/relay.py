"""The relay: publish pending outbox rows to the broker, in order, marking them sent once confirmed.

Runs as the Celery task ``servicekit.events.relay`` on the ``<service>.relay`` queue (one worker
process), requested after each commit that emitted events and swept by beat every few seconds.
By hand (or from a test)::

    from servicekit.events.relay import relay_pending
    relay_pending()            # publish everything pending now; returns the number published

One relay publishes at a time per database (PostgreSQL advisory lock, a file lock on SQLite), rows
in ``id`` order, so the events of one aggregate leave in the order they were written. Rows are
selected ``FOR UPDATE SKIP LOCKED`` and marked sent in the same transaction, only after the broker
confirmed each message; a crash between publish and mark re-publishes (consumers deduplicate).
A broker error stops the run and leaves the rest pending for the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
import zlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from prometheus_client import Counter

from servicekit.conf import servicekit_settings
from servicekit.events import bus
from servicekit.events.registry import get_registry

logger = logging.getLogger(__name__)

PUBLISHED = Counter(
    "events_published_total", "Outbox events published and confirmed by the broker.", ["service", "type"]
)
PUBLISH_ERRORS = Counter("events_publish_errors_total", "Relay runs stopped by a broker error.", ["service"])

LOCK_KEY = zlib.crc32(b"servicekit.events.relay")


@contextlib.contextmanager
def relay_lock(wait: float = 0.0) -> Iterator[bool]:
    """Hold the per-database relay lock; yields False if another relay kept it for ``wait`` seconds."""
    deadline = time.monotonic() + wait
    if connection.vendor == "postgresql":
        while True:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
                acquired = cursor.fetchone()[0]
            if acquired or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        try:
            yield acquired
        finally:
            if acquired:
                with contextlib.suppress(Exception), connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        return
    path = settings.RUN_DIR / f"relay-{servicekit_settings.SERVICE_NAME}.lock"
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                acquired = True
            except BlockingIOError:
                acquired = False
            if acquired or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        try:
            yield acquired
        finally:
            if acquired:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _next_millisecond() -> None:
    """Wait until the millisecond clock moves on.

    kombu's filesystem transport names message files after ``monotonic()`` in whole milliseconds and
    delivers them in name order; two messages in one millisecond could swap. One event per millisecond
    keeps the per-aggregate order on the embedded broker too.
    """
    start = round(time.monotonic() * 1000)
    while round(time.monotonic() * 1000) == start:
        time.sleep(0.0002)


class _BatchConfirms:
    """Publisher confirms for a whole batch on RabbitMQ: publish every row, then wait for the acks.

    Waiting for each confirm in turn costs one broker disk sync per message (RabbitMQ confirms a
    persistent message once it is on disk, syncing in batches); one wait per batch keeps the relay
    at thousands of messages per second. Delivery tags count the channel's publishes from 1.
    """

    def __init__(self, conn: Any):
        self.conn = conn
        self.channel = conn.channel()
        self.channel.confirm_select()
        self.published = 0
        self.status: dict[int, bool] = {}
        self.channel.events["basic_ack"].add(lambda tag, multiple: self._mark(tag, multiple, True))
        self.channel.events["basic_nack"].add(lambda tag, multiple: self._mark(tag, multiple, False))

    def _mark(self, tag: int, multiple: bool, ok: bool) -> None:
        for t in range(1, tag + 1) if multiple else (tag,):
            self.status.setdefault(t, ok)

    def confirmed_prefix(self, first: int, last: int, timeout: float) -> int:
        """How many of tags ``first..last`` in a row were acked (waiting up to ``timeout`` s for them)."""
        deadline = time.monotonic() + timeout
        while any(t not in self.status for t in range(first, last + 1)):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                self.conn.drain_events(timeout=min(left, 1.0))
            except TimeoutError:
                continue
        count = 0
        for t in range(first, last + 1):
            if not self.status.get(t):
                break
            count += 1
        return count


def _publish_batch(producer: Any, app: Any, batch: int, confirms: _BatchConfirms | None = None) -> int:
    from servicekit.events.models import OutboxEvent

    service = servicekit_settings.SERVICE_NAME
    registry = get_registry()
    error: Exception | None = None
    with transaction.atomic():
        pending = OutboxEvent.objects.filter(sent_at__isnull=True).order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            pending = pending.select_for_update(skip_locked=True)
        rows = list(pending.values_list("id", "envelope")[:batch])
        sent: list[int] = []
        ordered_by_clock = producer.connection.transport_cls == "filesystem"
        first_tag = confirms.published + 1 if confirms else 0
        for row_id, envelope in rows:
            if ordered_by_clock:
                _next_millisecond()
            try:
                bus.publish_event(producer, app, envelope, registry=registry)
            except Exception as exc:  # broker gone or refused: keep order, stop here
                error = exc
                break
            if confirms:
                confirms.published += 1
            sent.append(row_id)
        if confirms and sent:
            acked = confirms.confirmed_prefix(first_tag, confirms.published, timeout=30.0)
            if acked < len(sent) and error is None:
                error = ConnectionError(f"broker confirmed {acked} of {len(sent)} messages")
            sent = sent[:acked]
        for _row_id, envelope in rows[: len(sent)]:
            PUBLISHED.labels(service, envelope.get("type", "?")).inc()
        if sent:
            OutboxEvent.objects.filter(id__in=sent).update(sent_at=timezone.now())
        if error is not None and len(sent) < len(rows):
            OutboxEvent.objects.filter(id=rows[len(sent)][0]).update(
                attempts=F("attempts") + 1, last_error=repr(error)[:1000]
            )
    if error is not None:
        PUBLISH_ERRORS.labels(service).inc()
        raise error
    return len(rows)


def _pending_exists() -> bool:
    from servicekit.events.models import OutboxEvent

    return OutboxEvent.objects.filter(sent_at__isnull=True).exists()


def _wait_for_pending(linger: float) -> bool:
    """Whether a pending row shows up within ``linger`` seconds (checked on the partial index, no broker)."""
    deadline = time.monotonic() + linger
    while True:
        if _pending_exists():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def relay_pending(
    *, linger: float = 0.0, batch: int | None = None, time_limit: float = 20.0, lock_wait: float = 0.0
) -> int:
    """Publish pending outbox rows until none is left (then keep looking for ``linger`` seconds).

    Returns how many were published; 0 at once when another relay holds the lock (it is publishing,
    and lingers, so nothing is missed; the sweep covers the rest). Nothing pending → no broker
    connection at all. Raises the broker error that stopped it (confirmed rows stay marked sent).
    """
    batch = batch or servicekit_settings.EVENTS_RELAY_BATCH
    if not _wait_for_pending(linger):
        return 0
    app = bus.celery_app()
    published = 0
    with relay_lock(wait=lock_wait) as acquired:
        if not acquired:
            return 0
        amqp = app.connection_for_write().transport_cls in ("amqp", "pyamqp", "amqps")
        with bus.connect(app, confirm=not amqp) as conn:
            confirms = _BatchConfirms(conn) if amqp else None
            producer = conn.Producer(confirms.channel) if confirms else conn.Producer()
            bus.declare_topology(producer.channel)
            started = time.monotonic()
            while True:
                count = _publish_batch(producer, app, batch, confirms)
                published += count
                if time.monotonic() - started >= time_limit:
                    break  # let other tasks of this worker run; the next request or sweep continues
                if count:
                    continue
                if not _wait_for_pending(linger):
                    break
    if published:
        logger.info("relay published events", extra={"count": published})
    return published


def prune_outbox(*, older_than_days: int | None = None) -> int:
    """Delete sent outbox rows older than the retention; returns how many."""
    from servicekit.events.models import OutboxEvent

    days = older_than_days if older_than_days is not None else servicekit_settings.EVENTS_OUTBOX_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = OutboxEvent.objects.filter(sent_at__lt=cutoff).delete()
    return deleted
