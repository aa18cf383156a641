"""The loop through a real Celery worker on RabbitMQ: emit → relay → fan-out → handler, surviving kills."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection, transaction
from kitapp.models import Tally

from servicekit.events import bus, emit
from servicekit.events.models import DeadLetter, InboxEvent, OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)

TESTS = Path(__file__).resolve().parents[1]


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def worker(clean_queues, tmp_path):
    """A Celery worker of the kit project consuming its events and relay queues (prefork, 1 child)."""
    env = dict(os.environ)
    db = connection.settings_dict
    env["KIT_DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env["PYTHONPATH"] = str(TESTS)
    env["EVENTS_RETRY_BACKOFF"] = "0.05"
    env["EVENTS_MAX_RETRIES"] = "2"
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - open while the worker runs
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "kitproject",
            "worker",
            "-Q",
            f"{bus.events_queue_name('kit')},{bus.relay_queue_name('kit')}",
            "-c",
            "1",
            "-n",
            f"kit-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        cwd=TESTS,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: b" ready." in (tmp_path / "worker.log").read_bytes(), what="worker ready")
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


def count(key: str) -> int:
    tally = Tally.objects.filter(key=key).first()
    return tally.count if tally else 0


def test_committed_events_reach_the_handler_through_the_worker(worker):
    for i in range(30):
        with transaction.atomic():
            emit("kit.happened", aggregate_id="a", version=i + 1, data={"key": "w", "n": i})
            emit("kit.batched", aggregate_id="b", version=i + 1, data={"key": "wb", "n": i})
    wait_for(lambda: count("w") == 30 and count("wb") == 30, what="60 events applied")
    wait_for(lambda: not OutboxEvent.objects.filter(sent_at__isnull=True).exists(), what="outbox drained")
    assert InboxEvent.objects.count() == 60
    assert (count("w"), count("wb")) == (30, 30)


def test_killing_the_worker_process_mid_event_loses_and_duplicates_nothing(worker):
    for i in range(12):
        with transaction.atomic():
            emit("kit.happened", aggregate_id="a", version=i + 1, data={"key": "k", "n": i, "sleep": 0.3})
    kills = 0
    deadline = time.monotonic() + 60
    while count("k") < 12 and time.monotonic() < deadline:
        time.sleep(0.5)
        for child in children(worker.pid):
            os.kill(child, signal.SIGKILL)  # the pool process running a handler
            kills += 1
        if kills >= 3:
            break
    wait_for(lambda: count("k") == 12, timeout=90, what="12 events applied exactly once")
    time.sleep(1)  # a window for a late duplicate to show (an absence cannot be polled for)
    assert kills >= 3
    assert count("k") == 12
    assert InboxEvent.objects.count() == 12


def test_a_poison_event_lands_in_the_dead_letter_queue_instead_of_looping(worker):
    with transaction.atomic():
        emit("kit.happened", aggregate_id="a", version=1, data={"key": "poison", "poison": True})
    wait_for(lambda: DeadLetter.objects.exists(), what="dead letter recorded")
    letter = DeadLetter.objects.get()
    assert letter.attempts == 3  # first try + EVENTS_MAX_RETRIES=2
    assert count("poison") == 0
    from .conftest import read_queue

    dlq = wait_for(lambda: read_queue(bus.dead_letter_queue_name("kit")), what="message in the broker DLQ")
    assert [[e["id"] for e in m["args"][0]] for m in dlq] == [[str(letter.event_id)]]  # alone
    assert dlq[0]["headers"]["task"] == "servicekit.events.handle_batch"
    assert read_queue(bus.events_queue_name("kit")) == []
