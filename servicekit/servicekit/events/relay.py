"""The relay: publish pending outbox rows to the broker in batches, marking them sent once confirmed.

Runs as the Celery task ``servicekit.events.relay`` on the ``<service>.relay`` queue (one worker
process), requested after each commit that emitted events and swept by beat every few seconds.
By hand (or from a test)::

    from servicekit.events.relay import relay_pending
    relay_pending()            # publish everything pending now; returns the number of events published
    relay_pending(linger=0.5)  # ...and keep looking for new rows for 0.5 s (what the task does)

One relay publishes at a time per database (PostgreSQL advisory lock, a file lock on SQLite). Each
round takes up to ``EVENTS_RELAY_BATCH`` pending rows in ``id`` order (``FOR UPDATE SKIP LOCKED``,
one statement on the partial index, envelopes read as JSON text), groups them by event type (order
kept inside a group) and publishes ONE ``servicekit.events.handle_batch`` message per type to the
topic exchange with routing key = the type, so bindings and fan-out are those of single events. It
waits for the broker's publisher confirms once for the whole round, then marks the confirmed
messages' rows sent in the same transaction. A crash between publish and mark re-publishes
(consumers deduplicate); a broker error stops the run and leaves the rest pending for the next one.

Batches follow the load: a round takes whatever committed while the previous one was being
confirmed, up to the cap, and a single event when idle. Between rounds a lingering relay polls the
partial index every 20 ms (one cheap look-up, no broker), so an idle relay costs next to nothing
and a new event leaves within ~20 ms. On kombu's filesystem transport, which orders messages by
their millisecond timestamp, messages are spaced one millisecond apart.
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
from prometheus_client import Counter, Histogram

from servicekit import tracing
from servicekit.conf import servicekit_settings
from servicekit.events import bus, outbox

logger = logging.getLogger(__name__)

PUBLISHED = Counter(
    "events_published_total", "Outbox events published and confirmed by the broker.", ["service", "type"]
)
PUBLISH_ERRORS = Counter("events_publish_errors_total", "Relay runs stopped by a broker error.", ["service"])
PUBLISH_LATENCY = Histogram(
    "events_relay_publish_seconds",
    "Time of one relay round: publishing its messages until the broker confirmed them.",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

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
    """Publisher confirms for a whole batch on RabbitMQ: publish every message, then wait for the acks.

    Waiting for each confirm in turn costs one broker disk sync per message (RabbitMQ confirms a
    persistent message once it is on disk, syncing in batches); one wait per batch keeps the relay
    at thousands of events per second. Delivery tags count the channel's publishes from 1.
    """

    def __init__(self, conn: Any):
        self.conn = conn
        self.channel = conn.channel()
        self.channel.confirm_select()
        self.published = 0
        self.status: dict[int, bool] = {}
        self._settled = 0  # every tag up to this one has an answer
        self.channel.events["basic_ack"].add(lambda tag, multiple: self._mark(tag, multiple, True))
        self.channel.events["basic_nack"].add(lambda tag, multiple: self._mark(tag, multiple, False))

    def _mark(self, tag: int, multiple: bool, ok: bool) -> None:
        for t in range(self._settled + 1, tag + 1) if multiple else (tag,):
            self.status.setdefault(t, ok)
        while self._settled + 1 in self.status:
            self._settled += 1

    def wait(self, first: int, last: int, timeout: float) -> dict[int, bool]:
        """Whether each of tags ``first..last`` was acked (waiting up to ``timeout`` s for the answers)."""
        deadline = time.monotonic() + timeout
        while self._settled < last and any(t not in self.status for t in range(first, last + 1)):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                self.conn.drain_events(timeout=min(left, 1.0))
            except TimeoutError:
                continue
        return {t: self.status.pop(t, False) for t in range(first, last + 1)}


def _claim_pending(batch: int) -> list[tuple[int, str, str]]:
    """``(id, event type, envelope as JSON text)`` of up to ``batch`` pending rows, oldest first, locked
    until the transaction ends.

    PostgreSQL: ONE statement takes them (``FOR UPDATE SKIP LOCKED`` on the partial index) and stamps
    ``sent_at``, which only becomes visible if the transaction commits, i.e. after the broker
    confirmed; the caller puts back what was not confirmed. Elsewhere: a plain select (one relay per
    database holds the lock), and the caller stamps what was confirmed.
    """
    from servicekit.events.models import OutboxEvent

    table = connection.ops.quote_name(OutboxEvent._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} SET sent_at = %s WHERE id IN (SELECT id FROM {table} WHERE sent_at IS NULL"
                " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, event_type, envelope::text",
                [timezone.now(), batch],
            )
            return sorted(cursor.fetchall())  # RETURNING has no order
        lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
        cursor.execute(
            f"SELECT id, event_type, envelope FROM {table} WHERE sent_at IS NULL ORDER BY id LIMIT %s{lock}", [batch]
        )
        rows: list[tuple[int, str, str]] = cursor.fetchall()
        return rows


def _publish_batch(producer: Any, batch: int, confirms: _BatchConfirms | None = None) -> int:
    """Publish up to ``batch`` pending rows as one message per event type; returns how many rows."""
    from servicekit.events.models import OutboxEvent

    service = servicekit_settings.SERVICE_NAME
    error: Exception | None = None
    with transaction.atomic():
        rows = _claim_pending(batch)
        if not rows:
            return 0
        # One message per type, in order of each type's first row; rows keep their order inside it.
        groups: dict[str, tuple[list[int], list[str]]] = {}
        for row_id, event_type, envelope in rows:
            group = groups.get(event_type)
            if group is None:
                group = groups[event_type] = ([], [])
            group[0].append(row_id)
            group[1].append(envelope)
        ordered_by_clock = producer.connection.transport_cls == "filesystem"
        exchange = bus.exchange_name()
        first_tag = confirms.published + 1 if confirms else 0
        publish_started = time.perf_counter()
        published: list[str] = []
        # Tracing on: a publish span per event, child of its envelope's context (see servicekit.tracing).
        spans = tracing.PublishSpans(exchange) if tracing.ENABLED else None
        for event_type, (_ids, texts) in groups.items():
            if ordered_by_clock:
                _next_millisecond()
            try:
                header = spans.start(event_type, texts) if spans is not None else None
                bus.publish_batch(producer, event_type, texts, exchange=exchange, traceparent=header)
            except Exception as exc:  # broker gone or refused: stop here, keep the rest pending
                error = exc
                break
            if confirms:
                confirms.published += 1
            published.append(event_type)
        confirmed = published
        if confirms and published:
            acks = confirms.wait(first_tag, confirms.published, timeout=30.0)
            confirmed = [t for tag, t in enumerate(published, start=first_tag) if acks[tag]]
            if len(confirmed) < len(published) and error is None:
                error = ConnectionError(f"broker confirmed {len(confirmed)} of {len(published)} messages")
        PUBLISH_LATENCY.labels(service).observe(time.perf_counter() - publish_started)
        if spans is not None:
            spans.end(confirmed)
        for event_type in confirmed:
            PUBLISHED.labels(service, event_type).inc(len(groups[event_type][0]))
        rows_of = OutboxEvent.objects.filter
        if connection.vendor != "postgresql":
            sent = [i for t in confirmed for i in groups[t][0]]
            if sent:
                rows_of(id__in=sent).update(sent_at=timezone.now())
        if error is not None:
            unsent = [i for t, (ids, _texts) in groups.items() if t not in confirmed for i in ids]
            rows_of(id__in=unsent).update(sent_at=None, attempts=F("attempts") + 1, last_error=repr(error)[:1000])
    if error is not None:
        PUBLISH_ERRORS.labels(service).inc()
        raise error
    return len(rows)


def _pending_exists() -> bool:
    """One indexed look-up (the partial index on pending rows), no transaction, no broker."""
    from servicekit.events.models import OutboxEvent

    table = connection.ops.quote_name(OutboxEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {table} WHERE sent_at IS NULL LIMIT 1")
        return cursor.fetchone() is not None


POLL_INTERVAL = 0.02  # while lingering: at most 50 cheap look-ups a second


class _RequestSlot:
    """While the relay is sure to look at the outbox again before ``horizon``, it holds the service's
    relay-request slot until then (``outbox.hold_relay_slot``): web processes stop queueing relay tasks
    that would only find the lock taken (measured: ~20% of the downstream CPU per event at 650/s). A
    row committed while the slot is held is committed before the relay's next look, so it is seen."""

    def __init__(self) -> None:
        self.held = False
        self.refresh_at = 0.0

    MARGIN = 0.01  # the cache's clock starts when the SET arrives: end the hold a little early

    def hold_until(self, horizon: float) -> None:
        now = time.monotonic()
        ttl = horizon - now - self.MARGIN
        if ttl < 0.05 or now < self.refresh_at:
            return
        self.held = outbox.hold_relay_slot(ttl) or self.held
        self.refresh_at = now + ttl / 2

    def release(self) -> None:
        if self.held:
            outbox.release_relay_slot()
            self.held = False


def _wait_for_pending(linger: float, slot: _RequestSlot | None = None) -> bool:
    """Whether a pending row shows up within ``linger`` seconds (checked at once, then every 20 ms)."""
    deadline = time.monotonic() + linger
    while True:
        if slot is not None:
            slot.hold_until(deadline)  # the last look below is at or after the deadline
        if _pending_exists():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)


def relay_pending(
    *, linger: float = 0.0, batch: int | None = None, time_limit: float = 20.0, lock_wait: float = 0.0
) -> int:
    """Publish pending outbox rows until none is left (then keep looking for ``linger`` seconds).

    Returns how many were published; 0 at once when another relay holds the lock (it is publishing,
    and lingers, so nothing is missed; the sweep covers the rest). Nothing pending → no broker
    connection at all. Raises the broker error that stopped it (confirmed rows stay marked sent).
    """
    batch = batch or servicekit_settings.EVENTS_RELAY_BATCH
    round_interval = servicekit_settings.EVENTS_RELAY_ROUND_INTERVAL
    if not _wait_for_pending(linger):
        return 0
    app = bus.celery_app()
    published = 0
    with relay_lock(wait=lock_wait) as acquired:
        if not acquired:
            return 0
        amqp = app.connection_for_write().transport_cls in ("amqp", "pyamqp", "amqps")
        slot = _RequestSlot()
        with contextlib.ExitStack() as stack:
            stack.callback(slot.release)
            conn = stack.enter_context(bus.connect(app, confirm=not amqp))
            confirms = _BatchConfirms(conn) if amqp else None
            producer = conn.Producer(confirms.channel) if confirms else conn.Producer()
            bus.declare_topology(producer.channel)
            started = time.monotonic()
            while True:
                round_started = time.monotonic()
                # Another round follows until the time limit, or a linger if this one finds nothing.
                slot.hold_until(min(started + time_limit, round_started + linger))
                count = _publish_batch(producer, batch, confirms)
                published += count
                if round_started - started >= time_limit:
                    break  # let other tasks of this worker run; the next request or sweep continues
                if count >= batch:
                    continue  # a full batch: more is waiting
                # Under load the next round starts EVENTS_RELAY_ROUND_INTERVAL after this one did and
                # takes whatever committed meanwhile: batches grow with load instead of rounds (each
                # round and each consumer message has a fixed cost). Idle, the first new event is
                # seen by a poll within POLL_INTERVAL and goes out alone.
                pause = round_interval - (time.monotonic() - round_started)
                if pause > 0:
                    time.sleep(pause)
                if count:
                    continue  # under load: straight to the next round (it may find nothing)
                if not _wait_for_pending(linger, slot):
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
