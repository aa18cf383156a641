"""The relay publishes pending rows to every subscribed queue, in order, and marks them sent only once confirmed.

Grouping into one message per type, batch caps and the idle case: test_batches.py.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from servicekit.events import bus, emit
from servicekit.events.models import OutboxEvent
from servicekit.events.relay import relay_lock, relay_pending

from .conftest import read_queue

pytestmark = pytest.mark.django_db(transaction=True)


def _emit(n: int, *, aggregate: str = "agg", event_type: str = "kit.happened") -> list[str]:
    ids = []
    for i in range(n):
        with transaction.atomic():
            ids.append(emit(event_type, aggregate_id=aggregate, version=i + 1, data={"key": f"k{i}", "n": i}).id)
    return ids


def envelopes(messages: list[dict]) -> list[dict]:
    """Every envelope of a list of batch messages, in order."""
    return [envelope for m in messages for envelope in m["args"][0]]


def test_pending_events_fan_out_to_every_consumer_queue_in_order(clean_queues):
    ids = _emit(25)
    assert relay_pending() == 25
    assert not OutboxEvent.objects.filter(sent_at__isnull=True).exists()
    for service in ("kit", "other"):
        messages = read_queue(bus.events_queue_name(service))
        assert len(messages) == 1  # one batch: 25 rows of one type, under the cap
        assert [e["id"] for e in envelopes(messages)] == ids
        assert {m["headers"]["task"] for m in messages} == {"servicekit.events.handle_batch"}
        assert [e["data"]["n"] for e in envelopes(messages)] == list(range(25))


def test_routing_follows_the_registry(clean_queues):
    _emit(1, event_type="kit.unheard")  # consumed by "other" only
    relay_pending()
    assert read_queue(bus.events_queue_name("kit")) == []
    assert [e["type"] for e in envelopes(read_queue(bus.events_queue_name("other")))] == ["kit.unheard"]


def test_already_sent_rows_are_not_published_again(clean_queues):
    _emit(3)
    assert relay_pending() == 3
    assert relay_pending() == 0
    assert len(envelopes(read_queue(bus.events_queue_name("kit")))) == 3


def test_broker_failure_keeps_rows_pending_and_counts_the_attempt(clean_queues):
    from celery import current_app

    _emit(2)
    good = current_app.conf.broker_url
    current_app.conf.broker_url = "amqp://guest:guest@127.0.0.1:1//"
    try:
        with pytest.raises(Exception):  # noqa: B017 - any connection error
            relay_pending()
    finally:
        current_app.conf.broker_url = good
    assert OutboxEvent.objects.filter(sent_at__isnull=True).count() == 2
    # Once the broker is back, everything goes out.
    assert relay_pending() == 2
    assert len(envelopes(read_queue(bus.events_queue_name("kit")))) == 2


def test_a_publish_error_mid_batch_marks_only_the_confirmed_messages_rows_sent(clean_queues, monkeypatch):
    # Rows 0..4 alternate kit.happened / kit.unheard: one message per type, the second one fails.
    for i in range(5):
        with transaction.atomic():
            emit("kit.unheard" if i % 2 else "kit.happened", aggregate_id="a", version=i + 1, data={"key": "k", "n": i})
    real = bus.publish_batch
    calls = []

    def flaky(producer, event_type, texts, **kwargs):
        calls.append(event_type)
        if len(calls) == 2:
            raise ConnectionError("broker went away")
        return real(producer, event_type, texts, **kwargs)

    monkeypatch.setattr(bus, "publish_batch", flaky)
    with pytest.raises(ConnectionError):
        relay_pending()
    assert calls == ["kit.happened", "kit.unheard"]
    rows = list(OutboxEvent.objects.order_by("id"))
    assert [r.sent_at is not None for r in rows] == [True, False, True, False, True]
    assert [r.attempts for r in rows] == [0, 1, 0, 1, 0]
    assert "broker went away" in rows[1].last_error and "broker went away" in rows[3].last_error
    monkeypatch.setattr(bus, "publish_batch", real)
    assert relay_pending() == 2
    other = read_queue(bus.events_queue_name("other"))
    assert [[e["data"]["n"] for e in m["args"][0]] for m in other] == [[0, 2, 4], [1, 3]]
    assert [e["data"]["n"] for e in envelopes(read_queue(bus.events_queue_name("kit")))] == [0, 2, 4]


def test_only_one_relay_publishes_at_a_time(clean_queues):
    _emit(2)
    held = threading.Event()
    release = threading.Event()

    def hold_lock():
        with relay_lock() as acquired:
            assert acquired
            held.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=hold_lock)
    thread.start()
    try:
        assert held.wait(10)
        assert relay_pending() == 0  # another relay holds the lock
        assert OutboxEvent.objects.filter(sent_at__isnull=True).count() == 2
    finally:
        release.set()
        thread.join()
    assert relay_pending() == 2


def test_relay_task_publishes(clean_queues):
    from servicekit.events.tasks import relay

    _emit(2)
    assert relay.run(linger=0.0) == 2
    assert len(envelopes(read_queue(bus.events_queue_name("other")))) == 2
