"""``emit()``: record an event in the caller's transaction (transactional outbox).

Call it inside the service function's ``transaction.atomic()``, after the change it describes::

    from servicekit.events import emit

    with transaction.atomic():
        poll.status = Poll.Status.OPEN
        poll.save(update_fields=["status", "updated_at"])
        emit("poll.opened", aggregate_id=str(poll.id), version=poll.version, data={"id": str(poll.id), ...})

The row commits or rolls back with the change, so an event exists exactly when its change does.
After commit a relay is requested (a ``servicekit.events.relay`` task on ``<service>.relay``; throttled
per process, never blocking the request when the broker is down); the beat sweep publishes whatever
a missed request left pending.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from types import ModuleType
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from servicekit import tracing
from servicekit.conf import servicekit_settings
from servicekit.events.event import Event
from servicekit.events.registry import get_registry

logger = logging.getLogger(__name__)


class OutsideTransaction(RuntimeError):
    """``emit()`` was called outside ``transaction.atomic()``."""


class WrongProducer(ValueError):
    """A service emitted an event type another service owns."""


_trace: ModuleType | None
try:
    from opentelemetry import trace as _otel_trace

    _trace = _otel_trace
except ImportError:  # tracing not installed: events carry no traceparent
    _trace = None


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the active OpenTelemetry span, if tracing is on."""
    if _trace is None:
        return None
    ctx = _trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def _json_ready(data: dict[str, Any]) -> dict[str, Any]:
    # UUIDs, datetimes and Decimals become their JSON text form, exactly as consumers will see them.
    ready: dict[str, Any] = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    return ready


def emit(event_type: str, *, aggregate_id: str, version: int, data: dict[str, Any], using: str | None = None) -> Event:
    """Store event ``event_type`` about ``aggregate_id`` at ``version`` in the outbox of the current transaction.

    ``version`` is the aggregate's version after the change, incremented by the caller in the same
    transaction; consumers apply a change only if it is newer than what they hold.

    Validates the type (and, with ``SERVICEKIT["EVENTS_VALIDATE"]``, the data) against
    ``contracts/events``; raises ``UnknownEventType``/``InvalidEvent``/``WrongProducer`` for a bug in
    the caller, ``OutsideTransaction`` when not inside ``transaction.atomic()``. Returns the ``Event``.
    """
    from servicekit.events.models import OutboxEvent

    registry = get_registry()
    spec = registry.get(event_type)
    producer = servicekit_settings.SERVICE_NAME
    if spec.producer != producer:
        raise WrongProducer(f"{event_type} is produced by {spec.producer!r}, not {producer!r}")
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        raise OutsideTransaction("emit() must be called inside transaction.atomic() with the change it describes")
    data = _json_ready(data)
    if servicekit_settings.EVENTS_VALIDATE:
        registry.validate_data(event_type, data)
    now = timezone.now()
    event_id = str(uuid.uuid4())
    # Tracing on: the outbox write is a span of its own, and its context is the envelope's traceparent.
    with tracing.outbox_write(event_type, event_id=event_id) if tracing.ENABLED else contextlib.nullcontext():
        event = Event(
            id=event_id,
            type=event_type,
            occurred_at=now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            producer=producer,
            aggregate_id=str(aggregate_id),
            data=data,
            traceparent=current_traceparent(),
            version=int(version),
        )
        OutboxEvent.objects.using(connection.alias).create(
            event_id=event.id,
            event_type=event_type,
            aggregate_id=event.aggregate_id,
            envelope=event.envelope(),
            created_at=now,
        )
    transaction.on_commit(request_relay, using=connection.alias)
    return event


_state = threading.local()
_lock = threading.Lock()
_last_request = float("-inf")
_broker_down_until = 0.0


def request_relay() -> bool:
    """Ask this service's relay worker to publish pending rows now. Never raises, never blocks for long.

    At most one request per ``EVENTS_RELAY_REQUEST_INTERVAL`` seconds per process, and per service
    across its processes (a shared cache slot): a relay that is running keeps polling for
    ``EVENTS_RELAY_LINGER`` (longer) seconds, so it sees the rows of requests skipped here; while it
    runs it holds the slot (``hold_relay_slot``) for no longer than it is sure to look again. After a
    broker failure, requests pause for a few seconds (the beat sweep covers it).
    Returns whether a request was sent.
    """
    global _last_request, _broker_down_until
    if not servicekit_settings.EVENTS_RELAY_ON_COMMIT:
        return False
    interval = servicekit_settings.EVENTS_RELAY_REQUEST_INTERVAL
    now = time.monotonic()
    with _lock:
        if now - _last_request < interval or now < _broker_down_until:
            return False
        _last_request = now
    # The per-process throttle still let every web worker (5 per service) send ~10 requests/s, each a
    # broker publish inside the request plus a relay task the worker runs on the same CPUs as the web
    # processes (measured: the relay worker used ~0.6x the CPU of the vote web processes in `make bench`).
    # One request per interval per service is enough: a running relay lingers and sees the other rows,
    # and the beat sweep publishes anything a skipped request left. A cache outage fails open (send).
    if not _claim_shared_slot(interval):
        return False
    try:
        from servicekit.events.bus import send_relay_request

        send_relay_request()
        return True
    except Exception as exc:  # broker down: the sweep publishes later; the write already succeeded
        with _lock:
            _broker_down_until = time.monotonic() + servicekit_settings.EVENTS_BROKER_BACKOFF
        logger.warning("relay request failed; the sweep will publish", extra={"error": repr(exc)[:300]})
        return False


def _shared_slot_key() -> str:
    from servicekit.events.bus import relay_queue_name

    return f"servicekit:events:relay-requested:{relay_queue_name(servicekit_settings.SERVICE_NAME)}"


def _claim_shared_slot(interval: float) -> bool:
    """Whether no process of this service has sent a relay request in the last ``interval`` seconds
    (one ``SET NX PX`` in the cache); True when the cache is unavailable."""
    if interval <= 0:
        return True
    from django.core.cache import cache

    try:
        return bool(cache.add(_shared_slot_key(), 1, timeout=interval))
    except Exception:  # noqa: BLE001 - the cache only saves publishes; without it, send
        return True


def hold_relay_slot(seconds: float) -> bool:
    """Take the shared request slot for ``seconds``: a running relay that will look at the outbox
    again by then makes every request in that time redundant (each would be a relay task that finds
    the lock taken). Returns False when the cache is unavailable (requests then go through)."""
    from django.core.cache import cache

    try:
        cache.set(_shared_slot_key(), 1, timeout=seconds)
        return True
    except Exception:  # noqa: BLE001 - without a cache, web processes request as before
        return False


def release_relay_slot() -> None:
    """Give the slot back (a relay that stops looking): the next commit requests a relay at once."""
    from django.core.cache import cache

    with contextlib.suppress(Exception):  # it expires anyway
        cache.delete(_shared_slot_key())


def reset_relay_throttle() -> None:
    """Forget the throttle and broker back-off (tests)."""
    global _last_request, _broker_down_until
    with _lock:
        _last_request = float("-inf")
        _broker_down_until = 0.0
    from django.core.cache import cache

    with contextlib.suppress(Exception):  # nothing to forget without a cache
        cache.delete(_shared_slot_key())
