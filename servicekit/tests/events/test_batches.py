"""Batches: the relay groups what is pending into one message per type; a consumer applies a batch in
one transaction, new events only, and a failing or poison event is retried or dead-lettered alone."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from celery.exceptions import Reject
from django.db import connection, transaction
from kitapp import events as kit_handlers
from kitapp.models import Tally

from servicekit.events import Event, bus, emit
from servicekit.events.consumer import consume_batch
from servicekit.events.inbox import handler_name
from servicekit.events.models import DeadLetter, InboxEvent, OutboxEvent
from servicekit.events.relay import relay_pending

from .conftest import read_queue

pytestmark = pytest.mark.django_db(transaction=True)

BATCH_TASK = "servicekit.events.handle_batch"


def envelope(key: str = "a", *, event_type: str = "kit.happened", version: int = 1, **data) -> dict:
    return Event(
        id=str(uuid.uuid4()),
        type=event_type,
        occurred_at="2026-01-01T00:00:00.000000Z",
        producer="kit",
        aggregate_id="agg",
        data={"key": key, **data},
        version=version,
    ).envelope()


def count(key: str) -> int:
    tally = Tally.objects.filter(key=key).first()
    return tally.count if tally else 0


def emitted(event_type: str, key: str, version: int = 1) -> str:
    with transaction.atomic():
        return emit(event_type, aggregate_id="agg", version=version, data={"key": key, "n": version}).id


def batches(queue: str) -> list[tuple[str, list[str]]]:
    """``(task, [event ids])`` of every message in ``queue`` (taking them)."""
    return [(m["headers"]["task"], [e["id"] for e in m["args"][0]]) for m in read_queue(queue)]


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# --- Relay ------------------------------------------------------------------------------------------


def test_the_relay_groups_a_mixed_backlog_into_one_message_per_type_and_marks_all_sent(clean_queues):
    plan = ["kit.happened", "kit.batched", "kit.unheard", "kit.happened", "kit.batched", "kit.unheard", "kit.happened"]
    ids = [emitted(event_type, "m", version=i + 1) for i, event_type in enumerate(plan)]
    of = {t: [i for i, p in zip(ids, plan, strict=True) if p == t] for t in set(plan)}

    assert relay_pending() == 7
    assert not OutboxEvent.objects.filter(sent_at__isnull=True).exists()
    # Routing key = type, so each queue gets exactly its types, one message each, rows in order.
    assert batches(bus.events_queue_name("kit")) == [
        (BATCH_TASK, of["kit.happened"]),
        (BATCH_TASK, of["kit.batched"]),
    ]
    assert batches(bus.events_queue_name("other")) == [
        (BATCH_TASK, of["kit.happened"]),
        (BATCH_TASK, of["kit.unheard"]),
    ]


def test_batches_are_capped_and_carry_their_size_in_the_headers(clean_queues):
    ids = [emitted("kit.happened", "cap", version=i + 1) for i in range(7)]
    assert relay_pending(batch=3) == 7
    messages = read_queue(bus.events_queue_name("kit"))
    assert [[e["id"] for e in m["args"][0]] for m in messages] == [ids[0:3], ids[3:6], ids[6:7]]
    assert [m["headers"]["event_count"] for m in messages] == [3, 3, 1]
    assert {m["headers"]["event_type"] for m in messages} == {"kit.happened"}


def test_an_idle_lingering_relay_publishes_each_new_event_alone_and_promptly(clean_queues, monkeypatch):
    from servicekit.events import relay as relay_module

    published: list[int] = []
    polls = {"n": 0, "elapsed": 0.0}
    real_pending_exists = relay_module._pending_exists

    def counted_pending_exists():
        polls["n"] += 1
        return real_pending_exists()

    monkeypatch.setattr(relay_module, "_pending_exists", counted_pending_exists)

    def relay():
        started = time.monotonic()
        try:
            published.append(relay_pending(linger=2.0))
        finally:
            polls["elapsed"] = time.monotonic() - started
            connection.close()

    thread = threading.Thread(target=relay)
    thread.start()
    try:
        kit_queue = bus.events_queue_name("kit")
        first = emitted("kit.happened", "idle", version=1)
        assert wait_for(lambda: batches(kit_queue), what="the first event published") == [(BATCH_TASK, [first])]
        second = emitted("kit.happened", "idle", version=2)
        assert wait_for(lambda: batches(kit_queue), what="the second event published") == [(BATCH_TASK, [second])]
    finally:
        thread.join(30)
    assert not thread.is_alive()
    assert published == [2]
    assert not OutboxEvent.objects.filter(sent_at__isnull=True).exists()
    # While lingering it looked at the outbox at most every 20 ms (no busy loop).
    assert 0 < polls["n"] <= polls["elapsed"] / relay_module.POLL_INTERVAL + 5


def test_a_running_relay_holds_off_relay_requests_until_it_stops_looking(clean_queues, settings):
    from servicekit.events import outbox

    # Without the hold, every commit (each "from another process") would queue a relay task.
    settings.SERVICEKIT = {**settings.SERVICEKIT, "EVENTS_RELAY_REQUEST_INTERVAL": 0.001}
    relay_queue, kit_queue = bus.relay_queue_name("kit"), bus.events_queue_name("kit")
    first = emitted("kit.happened", "hold", version=1)
    assert len(read_queue(relay_queue)) == 1  # no relay running: the commit requested one

    thread = threading.Thread(target=lambda: (relay_pending(linger=1.0), connection.close()))
    thread.start()
    try:
        assert wait_for(lambda: batches(kit_queue), what="the first event published") == [(BATCH_TASK, [first])]
        for version in (2, 3, 4):
            outbox._last_request = float("-inf")  # as if committed by another web process
            event_id = emitted("kit.happened", "hold", version=version)
            assert wait_for(lambda: batches(kit_queue), what="the event published") == [(BATCH_TASK, [event_id])]
        assert read_queue(relay_queue) == []  # the running relay published them; no request was queued
    finally:
        thread.join(30)
    assert not thread.is_alive()
    outbox._last_request = float("-inf")
    emitted("kit.happened", "hold", version=5)
    assert len(read_queue(relay_queue)) == 1  # the relay stopped looking: requests go through again


# --- Consumer ---------------------------------------------------------------------------------------


def test_a_batch_applies_in_one_go_and_records_every_event_in_the_inbox():
    envs = [envelope("b1"), envelope("b2"), envelope("b1")]
    result = consume_batch(envs)
    assert result.applied == {e["id"]: [handler_name(kit_handlers.count_happened)] for e in envs}
    assert (count("b1"), count("b2")) == (2, 1)
    inbox = sorted(str(i) for i in InboxEvent.objects.values_list("event_id", flat=True))
    assert inbox == sorted(e["id"] for e in envs)


def test_a_batch_with_an_already_applied_event_applies_only_the_new_ones():
    old = envelope("d")
    assert consume_batch([old]).counts()["applied"] == 1
    new = [envelope("d"), envelope("d")]
    result = consume_batch([new[0], old, new[1]])
    assert sorted(result.applied) == sorted(e["id"] for e in new)
    assert result.duplicates == [old["id"]]
    assert count("d") == 3
    assert InboxEvent.objects.count() == 3


def test_redelivering_a_whole_batch_changes_nothing():
    envs = [envelope("r"), envelope("r", event_type="kit.batched"), envelope("s")]
    first = consume_batch(envs)
    assert len(first.applied) == 3
    before = (count("r"), count("s"), InboxEvent.objects.count())
    assert before == (2, 1, 3)
    again = consume_batch([dict(e) for e in envs])  # the same message delivered again
    assert again.applied == {}
    assert again.duplicates == [e["id"] for e in envs]
    assert (count("r"), count("s"), InboxEvent.objects.count()) == before
    assert len(kit_handlers.BATCH_CALLS) == 1  # the batch handler was not called for nothing


def test_the_same_event_twice_in_one_batch_is_applied_once():
    env = envelope("twice")
    result = consume_batch([env, dict(env)])
    assert list(result.applied) == [env["id"]]
    assert count("twice") == 1


def test_the_batch_handler_receives_only_the_new_events_in_order():
    applied = envelope("h", event_type="kit.batched")
    consume_batch([applied])
    calls = kit_handlers.BATCH_CALLS
    assert calls == [[applied["id"]]]
    calls.clear()
    envs = [envelope("h", event_type="kit.batched") for _ in range(4)]
    result = consume_batch([envs[0], envs[1], applied, envs[2], envs[3]])
    assert calls == [[e["id"] for e in envs]]  # one call, new events, batch order
    assert result.applied == {e["id"]: [handler_name(kit_handlers.count_batched)] for e in envs}
    assert count("h") == 5


def test_a_poison_envelope_is_dead_lettered_alone_while_the_others_are_applied(clean_queues):
    good = [envelope("g1"), envelope("g2")]
    bad_data = {**envelope("x"), "data": {"key": 5}}
    unknown = {**envelope("x"), "type": "kit.no_such_type"}
    result = consume_batch([good[0], bad_data, "not even a dict", good[1], unknown])  # no Reject
    assert sorted(result.applied) == sorted(e["id"] for e in good)
    assert (count("g1"), count("g2"), count("x")) == (1, 1, 0)
    letters = list(DeadLetter.objects.order_by("id"))
    assert [(letter.envelope, letter.attempts) for letter in letters] == [
        (bad_data, 1),
        ({"raw": "'not even a dict'"}, 1),
        (unknown, 1),
    ]
    dlq = read_queue(bus.dead_letter_queue_name("kit"))
    assert [(m["headers"]["task"], m["args"][0]) for m in dlq] == [
        (BATCH_TASK, [bad_data]),
        (BATCH_TASK, ["not even a dict"]),
        (BATCH_TASK, [unknown]),
    ]
    assert read_queue(bus.events_queue_name("kit")) == []  # nothing retried


def test_a_handler_failing_for_one_event_retries_only_that_event(clean_queues):
    kit_handlers.FAILURES["f"] = 10  # fails every time
    envs = [envelope("ok1"), envelope("f"), envelope("ok2")]
    result = consume_batch(envs)
    assert sorted(result.applied) == sorted([envs[0]["id"], envs[2]["id"]])
    assert result.retried == [envs[1]["id"]]
    assert (count("ok1"), count("ok2"), count("f")) == (1, 1, 0)
    assert not Tally.objects.filter(key="f:partial").exists()  # its partial effect rolled back
    assert sorted(str(i) for i in InboxEvent.objects.values_list("event_id", flat=True)) == sorted(
        [envs[0]["id"], envs[2]["id"]]
    )
    retries = read_queue(bus.events_queue_name("kit"))
    assert [(m["headers"]["task"], m["args"][0], m["kwargs"]) for m in retries] == [
        (BATCH_TASK, [envs[1]], {"attempt": 1})
    ]
    assert retries[0]["headers"]["eta"] is not None
    assert read_queue(bus.events_queue_name("other")) == []  # no re-fan-out
    # The retry, once the handler works again, applies it; the rest stays as it was.
    kit_handlers.FAILURES.clear()
    assert list(consume_batch(retries[0]["args"][0], **retries[0]["kwargs"]).applied) == [envs[1]["id"]]
    assert (count("ok1"), count("ok2"), count("f")) == (1, 1, 1)


def test_a_failing_batch_handler_falls_back_to_one_event_at_a_time(clean_queues):
    kit_handlers.FAILURES["bf"] = 10
    envs = [envelope(key, event_type="kit.batched") for key in ("bx", "bf", "by")]
    ids = [e["id"] for e in envs]
    result = consume_batch(envs)
    # The whole batch once (rolled back), then each event in its own transaction.
    calls = kit_handlers.BATCH_CALLS
    assert calls == [ids, [ids[0]], [ids[1]], [ids[2]]]
    assert sorted(result.applied) == sorted([ids[0], ids[2]])
    assert result.retried == [ids[1]]
    assert (count("bx"), count("by"), count("bf")) == (1, 1, 0)
    assert [m["args"][0] for m in read_queue(bus.events_queue_name("kit"))] == [[envs[1]]]


def test_after_the_last_retry_the_failing_event_is_dead_lettered_alone(settings, clean_queues):
    settings.SERVICEKIT = {**settings.SERVICEKIT, "EVENTS_MAX_RETRIES": 2}
    kit_handlers.FAILURES["p"] = 10
    env = envelope("p")
    result = consume_batch([env], attempt=2)
    assert result.dead_lettered == [env["id"]]
    letter = DeadLetter.objects.get()
    assert (str(letter.event_id), letter.attempts, letter.envelope) == (env["id"], 3, env)
    assert "induced failure" in letter.error
    assert [m["args"][0] for m in read_queue(bus.dead_letter_queue_name("kit"))] == [[env]]
    assert read_queue(bus.events_queue_name("kit")) == []  # no further retry


def test_a_retry_the_broker_cannot_take_hands_the_whole_message_back(clean_queues, monkeypatch):
    kit_handlers.FAILURES["down"] = 10
    envs = [envelope("up"), envelope("down")]

    def refuse(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(bus, "connect", refuse)
    with pytest.raises(Reject) as rejected:
        consume_batch(envs)
    assert rejected.value.requeue is True
    assert count("up") == 1  # committed; its redelivery will be a duplicate
    monkeypatch.undo()
    result = consume_batch(envs)  # the redelivered message
    assert result.duplicates == [envs[0]["id"]]
    assert result.retried == [envs[1]["id"]]
    assert count("up") == 1
    assert [m["args"][0] for m in read_queue(bus.events_queue_name("kit"))] == [[envs[1]]]


def test_the_batch_task_is_registered_and_acknowledged_late():
    from celery import current_app

    import servicekit.tasks  # noqa: F401 - what a worker's autodiscover_tasks() imports

    task = current_app.tasks[BATCH_TASK]
    assert (task.acks_late, task.reject_on_worker_lost) == (True, True)
    assert "servicekit.events.handle" in current_app.tasks  # messages of earlier releases
    envs = [envelope("t"), envelope("t")]
    task.run(envs)
    task.run(envs)  # redelivered
    assert count("t") == 2
    assert InboxEvent.objects.count() == 2


SQLITE_CONSUMER = """
import json
import uuid
import django
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
from kitapp.models import Tally
from servicekit.events import Event
from servicekit.events.consumer import consume_batch
from servicekit.events.models import InboxEvent

def envelope(key, event_type):
    return Event(id=str(uuid.uuid4()).upper(), type=event_type, occurred_at="2026-01-01T00:00:00Z",
                 producer="kit", aggregate_id="a", data={"key": key}, version=1).envelope()

envs = [envelope("s", "kit.happened"), envelope("s", "kit.batched"), envelope("t", "kit.batched")]
first = consume_batch(envs[:2]).counts()
second = consume_batch(envs).counts()
third = consume_batch(envs).counts()
print(json.dumps({
    "vendor": connection.vendor,
    "runs": [first, second, third],
    "tally": dict(Tally.objects.values_list("key", "count")),
    "inbox": InboxEvent.objects.count(),
}))
"""


def test_the_inbox_statement_works_on_sqlite(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "KIT_DATABASE_URL"}
    env.update(
        BROKER_URL="", RUN_DIR=str(tmp_path), PYTHONPATH=str(tests), DJANGO_SETTINGS_MODULE="kitproject.settings"
    )
    done = subprocess.run(
        [sys.executable, "-c", SQLITE_CONSUMER], cwd=tests, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["vendor"] == "sqlite"
    applied = [run["applied"] for run in out["runs"]]
    duplicates = [run["duplicate_or_unhandled"] for run in out["runs"]]
    assert (applied, duplicates) == ([2, 1, 0], [0, 2, 3])
    assert out["tally"] == {"s": 2, "t": 1}
    assert out["inbox"] == 3


def test_tasks_keep_their_database_connection_and_an_eager_one_its_callers_transaction():
    import kitapp.tasks
    from celery.signals import task_postrun, task_prerun
    from django.conf import settings

    import servicekit.tasks  # noqa: F401 - connects the per-task connection recycling

    assert settings.CELERY_DB_REUSE_MAX >= 100  # Celery's fixup would reconnect for every task otherwise
    Tally.objects.exists()
    raw = connection.connection
    task = kitapp.tasks.repair
    task_prerun.send(sender=task, task_id="t", task=task)  # as a worker runs one
    task_postrun.send(sender=task, task_id="t", task=task)
    Tally.objects.exists()
    assert connection.connection is raw  # kept, not reconnected
    with transaction.atomic():
        Tally.objects.create(key="caller")
        task.apply(kwargs={"key": "eager"})  # prerun/postrun fire here too
        assert connection.in_atomic_block
        Tally.objects.create(key="after")
    assert set(Tally.objects.values_list("key", flat=True)) == {"caller", "eager", "after"}
