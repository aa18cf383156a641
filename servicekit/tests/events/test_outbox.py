"""emit(): the event row exists exactly when the change commits, and only valid events get in."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction
from kitapp.models import Tally

from servicekit.events import InvalidEvent, OutsideTransaction, UnknownEventType, WrongProducer, emit
from servicekit.events.models import OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)


def test_emit_stores_the_envelope_in_the_outbox_with_the_change():
    with transaction.atomic():
        Tally.objects.create(key="a")
        event = emit("kit.happened", aggregate_id="agg-1", version=3, data={"key": "a", "n": 1})
    row = OutboxEvent.objects.get()
    assert row.sent_at is None
    assert str(row.event_id) == event.id
    assert row.envelope == {
        "id": event.id,
        "type": "kit.happened",
        "occurred_at": event.occurred_at,
        "producer": "kit",
        "aggregate_id": "agg-1",
        "version": 3,
        "data": {"key": "a", "n": 1},
        "traceparent": None,
    }
    assert uuid.UUID(event.id).version == 4
    assert event.occurred_at.endswith("Z")


def test_rolled_back_change_leaves_no_event():
    with pytest.raises(RuntimeError), transaction.atomic():
        Tally.objects.create(key="b")
        emit("kit.happened", aggregate_id="agg-1", version=1, data={"key": "b"})
        raise RuntimeError("the service function failed after emitting")
    assert not OutboxEvent.objects.exists()
    assert not Tally.objects.exists()


def test_emit_outside_a_transaction_is_refused():
    with pytest.raises(OutsideTransaction):
        emit("kit.happened", aggregate_id="x", version=1, data={"key": "a"})
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize(
    ("event_type", "data", "error"),
    [
        ("kit.nonexistent", {"key": "a"}, UnknownEventType),
        ("other.thing", {"key": "a"}, WrongProducer),  # produced by another service
        ("kit.happened", {"n": 1}, InvalidEvent),  # required "key" missing
        ("kit.happened", {"key": ""}, InvalidEvent),
        ("kit.happened", {"key": "a", "n": "one"}, InvalidEvent),
    ],
)
def test_invalid_events_are_refused_and_nothing_is_written(event_type, data, error):
    with pytest.raises(error), transaction.atomic():
        emit(event_type, aggregate_id="x", version=1, data=data)
    assert not OutboxEvent.objects.exists()


def test_uuid_and_datetime_data_are_stored_as_json_text():
    poll = uuid.uuid4()
    with transaction.atomic():
        event = emit("kit.happened", aggregate_id=poll, version=1, data={"key": "k", "poll": poll})
    assert event.aggregate_id == str(poll)
    assert OutboxEvent.objects.get().envelope["data"]["poll"] == str(poll)


def test_commit_requests_a_relay_run_on_the_relay_queue(clean_queues):
    from servicekit.events import bus

    from .conftest import read_queue

    with transaction.atomic():
        emit("kit.happened", aggregate_id="x", version=1, data={"key": "a"})
        assert read_queue(bus.relay_queue_name("kit")) == []  # nothing before commit
    requests = read_queue(bus.relay_queue_name("kit"))
    assert [m["headers"]["task"] for m in requests] == ["servicekit.events.relay"]


def test_relay_requests_are_throttled_per_process(clean_queues, settings):
    from servicekit.events import bus

    settings.SERVICEKIT = {**settings.SERVICEKIT, "EVENTS_RELAY_REQUEST_INTERVAL": 3600}

    from .conftest import read_queue

    for i in range(5):
        with transaction.atomic():
            emit("kit.happened", aggregate_id="x", version=1, data={"key": str(i)})
    assert OutboxEvent.objects.count() == 5
    assert len(read_queue(bus.relay_queue_name("kit"))) == 1


def test_relay_requests_are_throttled_across_processes(clean_queues, settings):
    from servicekit.events import bus, outbox

    settings.SERVICEKIT = {**settings.SERVICEKIT, "EVENTS_RELAY_REQUEST_INTERVAL": 3600}

    from .conftest import read_queue

    for i in range(3):
        outbox._last_request = float("-inf")  # each emit as if from another web worker process
        with transaction.atomic():
            emit("kit.happened", aggregate_id="x", version=1, data={"key": str(i)})
    assert OutboxEvent.objects.count() == 3
    assert len(read_queue(bus.relay_queue_name("kit"))) == 1  # the shared cache slot let one through


def test_broker_down_does_not_fail_the_write(settings):
    from servicekit.events import bus
    from servicekit.events.outbox import reset_relay_throttle

    reset_relay_throttle()
    bus.drop_cached_connection()
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"
    from celery import current_app

    current_app.conf.broker_url = "amqp://guest:guest@127.0.0.1:1//"
    try:
        with transaction.atomic():
            Tally.objects.create(key="z")
            emit("kit.happened", aggregate_id="x", version=1, data={"key": "z"})
    finally:
        current_app.conf.broker_url = settings.CELERY_BROKER_URL = _original_broker()
        bus.drop_cached_connection()
        reset_relay_throttle()
    assert Tally.objects.filter(key="z").exists()
    assert OutboxEvent.objects.filter(sent_at__isnull=True).count() == 1


def _original_broker() -> str:
    import os

    return os.environ["BROKER_URL"]
