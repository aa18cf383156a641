"""Consuming one envelope (``servicekit.events.handle``, messages of earlier releases): handlers run once
per event (inbox), failures retry alone with backoff, poison goes to dead letters. Batches: test_batches.py."""

from __future__ import annotations

import threading
import uuid

import pytest
from celery.exceptions import Reject
from django.db import connection
from kitapp import events as kit_handlers
from kitapp.models import Tally

from servicekit.events import Event, bus
from servicekit.events.consumer import backoff, consume, consume_batch
from servicekit.events.deadletters import replay_dead_letters
from servicekit.events.inbox import handler_name
from servicekit.events.models import DeadLetter, InboxEvent

from .conftest import read_queue

pytestmark = pytest.mark.django_db(transaction=True)

HANDLER = handler_name(kit_handlers.count_happened)


def envelope(key: str = "a", *, event_type: str = "kit.happened", **data) -> dict:
    return Event(
        id=str(uuid.uuid4()),
        type=event_type,
        occurred_at="2026-01-01T00:00:00.000000Z",
        producer="kit",
        aggregate_id="agg",
        data={"key": key, **data},
    ).envelope()


def count(key: str) -> int:
    tally = Tally.objects.filter(key=key).first()
    return tally.count if tally else 0


def test_an_event_is_applied_once_and_recorded_in_the_inbox():
    env = envelope("a")
    assert consume(env) == [HANDLER]
    assert count("a") == 1
    inbox = InboxEvent.objects.get()
    assert (str(inbox.event_id), inbox.handler, inbox.event_type) == (env["id"], HANDLER, "kit.happened")


def test_redelivered_and_duplicated_events_change_nothing():
    env = envelope("a")
    consume(env)
    assert consume(env) == []
    assert consume(dict(env)) == []
    assert count("a") == 1
    assert InboxEvent.objects.count() == 1
    consume(envelope("a"))  # a different event of the same kind does count
    assert count("a") == 2


def test_concurrent_duplicates_apply_once():
    env = envelope("c")
    Tally.objects.create(key="c", count=0)
    barrier = threading.Barrier(4)
    errors = []

    def worker():
        try:
            barrier.wait()
            consume(env)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert count("c") == 1


def test_a_failing_handler_is_rolled_back_and_retried_on_its_own_queue_only(clean_queues):
    kit_handlers.FAILURES["f"] = 1
    env = envelope("f")
    assert consume(env) == []
    assert not Tally.objects.filter(key__startswith="f").exists()  # partial effect rolled back
    assert not InboxEvent.objects.exists()
    retries = read_queue(bus.events_queue_name("kit"))
    assert len(retries) == 1
    assert retries[0]["headers"]["task"] == "servicekit.events.handle_batch"
    assert retries[0]["args"][0] == [env]  # alone, as a one-event batch
    assert retries[0]["kwargs"] == {"attempt": 1}
    assert retries[0]["headers"]["eta"] is not None
    assert read_queue(bus.events_queue_name("other")) == []  # no re-fan-out
    # The retry succeeds.
    assert consume(env, attempt=1) == [HANDLER]
    assert count("f") == 1


def test_backoff_grows_exponentially_and_is_capped(settings):
    settings.SERVICEKIT = {**settings.SERVICEKIT, "EVENTS_RETRY_BACKOFF": 1.0, "EVENTS_RETRY_BACKOFF_MAX": 8.0}
    for attempt, cap in [(0, 1), (1, 2), (2, 4), (3, 8), (10, 8)]:
        delay = backoff(attempt)
        assert cap / 2 <= delay <= cap


def test_giving_up_after_max_retries_dead_letters(settings, clean_queues):
    settings.SERVICEKIT = {**settings.SERVICEKIT, "EVENTS_MAX_RETRIES": 2}
    kit_handlers.FAILURES["p"] = 10
    env = envelope("p")
    with pytest.raises(Reject) as rejected:
        consume(env, attempt=2)
    assert rejected.value.requeue is False
    letter = DeadLetter.objects.get()
    assert (str(letter.event_id), letter.event_type, letter.attempts) == (env["id"], "kit.happened", 3)
    assert "induced failure" in letter.error
    assert letter.envelope == env
    assert read_queue(bus.events_queue_name("kit")) == []  # no further retry


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "kit.happened", "data": {"key": "x"}},  # no id, producer, ...
        {**envelope("x"), "type": "kit.no_such_type"},
        {**envelope("x"), "data": {"key": 5}},  # data breaks the schema
        "not even a dict",
    ],
)
def test_poison_messages_are_dead_lettered_at_once(bad):
    with pytest.raises(Reject):
        consume(bad)
    letter = DeadLetter.objects.get()
    assert letter.attempts == 1
    assert not Tally.objects.exists()


def test_events_without_a_handler_here_are_acknowledged():
    env = envelope("o", event_type="other.thing")
    env["producer"] = "other"
    assert consume(env) == []
    assert not InboxEvent.objects.exists()
    assert not DeadLetter.objects.exists()


def test_replaying_dead_letters_sends_them_back_to_this_queue(clean_queues):
    kit_handlers.FAILURES["r"] = 1
    env = envelope("r")
    with pytest.raises(Reject):
        consume(env, attempt=99)
    assert replay_dead_letters() == 1
    assert DeadLetter.objects.get().replayed_at is not None
    assert replay_dead_letters() == 0  # replayed once only
    messages = read_queue(bus.events_queue_name("kit"))
    assert [[e["id"] for e in m["args"][0]] for m in messages] == [[env["id"]]]
    assert messages[0]["kwargs"] == {}
    consume_batch(messages[0]["args"][0])
    assert count("r") == 1


def test_list_and_replay_commands(clean_queues, capsys):
    from django.core.management import call_command

    with pytest.raises(Reject):
        consume({**envelope("x"), "data": {"key": 5}})
    call_command("list_dead_letters")
    out = capsys.readouterr().out
    assert "kit.happened" in out and "1 dead letter(s)" in out
    call_command("replay_dead_letters")
    assert "replayed 1 dead letter(s)" in capsys.readouterr().out
    call_command("list_dead_letters")
    assert "0 dead letter(s)" in capsys.readouterr().out
