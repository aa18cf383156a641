"""Fault tests: no acknowledged vote is lost or counted twice, whatever fails.

The main run casts votes from distinct users across the polls through the gateway while a fault
thread SIGKILLs a consuming worker every few seconds, restarts RabbitMQ gracefully and with kill -9,
kills the relay (vote_service's worker) mid-stream, and publishes 10% of all events a second time.
Then, within 30 s: every acknowledged vote is in the ledger exactly once, every tally equals the
ledger's count and the results endpoint agrees. The figures are printed at the end.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import requests

from .conftest import POLLS, VOTES
from .faults import database_url, republish_fraction, snapshot, verdict

CONSUMING_WORKERS = ("choices.worker", "polls.worker", "votes.worker")
CONVERGE_LIMIT = 30.0
# Acknowledged votes allowed in flight before the load holds back (what the pipeline drains in < 30 s).
MAX_BACKLOG = 600
FIGURES: dict[str, object] = {}


def pool_processes(stack, name: str) -> list[int]:
    """PIDs of the prefork pool processes of a Celery worker of the stack."""
    found: list[int] = []
    for task in Path(f"/proc/{stack.processes[name].pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(pid) for pid in (task / "children").read_text().split()]
    return found


def ensure_running(stack, names=CONSUMING_WORKERS) -> None:
    for name in names:
        if not stack.processes[name].alive():
            stack.start_process(name, wait=True, timeout=90)


def converge(stack, platform, polls, acknowledged, limit: float = CONVERGE_LIMIT):
    """Seconds until ledger, tallies and results agree (or the last figures after ``limit`` s)."""
    started = time.monotonic()
    while True:
        figures = verdict(snapshot(stack, platform, polls), acknowledged, polls)
        elapsed = time.monotonic() - started
        print(f"  converging: {elapsed:5.1f} s {figures}", flush=True)
        if not any(figures.values()) or elapsed > limit:
            return elapsed, figures
        time.sleep(0.5)


class Load:
    """Votes from distinct users, spread over ``duration`` seconds by ``threads`` clients."""

    def __init__(self, platform, polls, votes: int, *, first_user: int, duration: float, threads: int = 24):
        self.platform = platform
        rng = random.Random(first_user)
        self.plan = [
            (first_user + i, polls[i % len(polls)].id, rng.choice(polls[i % len(polls)].choices)) for i in range(votes)
        ]
        self.tokens = {user: platform.token(user) for user, _, _ in self.plan}
        self.interval = duration / votes
        self.threads = threads
        self.acknowledged: dict[int, dict] = {}
        self.statuses: Counter = Counter()
        self.done = 0
        self.held_seconds = 0.0
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def progress(self) -> float:
        return self.done / len(self.plan)

    def _vote(self, index: int) -> None:
        user, poll, choice = self.plan[index]
        session = getattr(self._local, "session", None) or requests.Session()
        self._local.session = session
        try:
            response = session.post(
                f"{self.platform.gateway_url}/api/v1/votes/",
                json={"poll": poll, "choice": choice},
                headers={"Authorization": f"Bearer {self.tokens[user]}"},
                timeout=30,
            )
            status = response.status_code
            body = response.json() if status == 201 else None
        except requests.RequestException as exc:
            status, body = f"error:{type(exc).__name__}", None
        with self._lock:
            self.statuses[status] += 1
            self.done += 1
            if body is not None:
                self.acknowledged[user] = {"id": body["id"], "poll": poll, "choice": choice}

    def run(self, backlog=None, max_backlog: int = 0) -> None:
        """Submit the votes on schedule; with ``backlog`` (a callable), hold back while more than
        ``max_backlog`` acknowledged votes are not yet applied downstream (a sustained load, not a
        flood: the pipeline of this machine sets the pace, faults still hit it mid-stream)."""
        started = time.monotonic()
        held = 0.0
        with ThreadPoolExecutor(self.threads) as pool:
            for index in range(len(self.plan)):
                if backlog is not None and index % 50 == 0:
                    waited = time.monotonic()
                    while backlog() > max_backlog and time.monotonic() - waited < 60:
                        time.sleep(0.5)
                    held += time.monotonic() - waited
                delay = started + held + index * self.interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(self._vote, index)
        self.held_seconds = held


def test_no_vote_lost_or_double_counted_under_faults(chaos_stack, rabbit, platform, supervisor):
    stack = chaos_stack
    polls = platform.create_polls(POLLS, choices=3, prefix="Chaos")
    platform.wait_warm(polls)
    load = Load(platform, polls, VOTES, first_user=1_000_000, duration=max(50.0, VOTES / 60), threads=16)

    def backlog() -> int:
        """Acknowledged votes whose vote.cast choice_service has not applied yet."""
        with psycopg.connect(database_url(stack, "CHOICE_DATABASE_URL")) as conn:
            applied = conn.execute(
                "SELECT count(*) FROM servicekit_inbox_event WHERE event_type = 'vote.cast'"
            ).fetchone()[0]
        return len(load.acknowledged) - applied

    faults: Counter = Counter()
    stop = threading.Event()
    errors: list[BaseException] = []

    def broker_faults() -> None:
        try:
            plan = [(0.1, "graceful"), (0.4, "kill -9")]
            for threshold, kind in plan:
                while load.progress < threshold and not stop.is_set():
                    time.sleep(0.1)
                if stop.is_set():
                    return
                if kind == "graceful":
                    rabbit.stop()  # graceful shutdown, then start again
                    faults["broker graceful restarts"] += 1
                else:
                    rabbit.kill()  # kill -9
                    faults["broker kill -9 restarts"] += 1
                time.sleep(1)
                rabbit.start()
            while load.progress < 0.6 and not stop.is_set():
                time.sleep(0.1)
            faults["events published twice (mid-run)"] += republish_fraction(stack, rabbit.url, 0.1, seed=1)
        except BaseException as exc:  # surfaced in the test thread
            errors.append(exc)

    def process_faults() -> None:
        try:
            rotation = 0
            whole_worker_done = relay_done = False
            while not stop.wait(3.0):
                if not relay_done and load.progress >= 0.3:
                    # The relay of vote events (vote_service's worker, whole process group) mid-stream.
                    stack.kill("votes.worker")  # the supervisor thread starts it again
                    faults["relay kills"] += 1
                    relay_done = True
                elif not whole_worker_done and load.progress >= 0.55:
                    # A whole consuming worker (its broker connection drops with unacked messages).
                    stack.kill("choices.worker")
                    faults["whole-worker SIGKILLs"] += 1
                    whole_worker_done = True
                else:
                    # The pool process of a consuming worker, mid-task (reject-on-worker-lost).
                    name = CONSUMING_WORKERS[rotation % len(CONSUMING_WORKERS)]
                    rotation += 1
                    for child in pool_processes(stack, name):
                        os.kill(child, signal.SIGKILL)
                        faults["worker process SIGKILLs"] += 1
        except BaseException as exc:
            errors.append(exc)

    injectors = [
        threading.Thread(target=broker_faults, daemon=True),
        threading.Thread(target=process_faults, daemon=True),
    ]
    started = time.monotonic()
    for injector in injectors:
        injector.start()
    load.run(backlog=backlog, max_backlog=MAX_BACKLOG)
    stop.set()
    for injector in injectors:
        injector.join(120)
    faults_stopped = time.monotonic()
    load_seconds = faults_stopped - started
    assert not errors, errors
    # After the run: 10% of every event published so far goes out once more, then everything settles.
    faults["events published twice (after run)"] += republish_fraction(stack, rabbit.url, 0.1, seed=2)
    ensure_running(stack)
    _, figures = converge(
        stack, platform, polls, load.acknowledged, limit=CONVERGE_LIMIT - (time.monotonic() - faults_stopped)
    )
    seconds = time.monotonic() - faults_stopped

    FIGURES.update(
        {
            "votes attempted": VOTES,
            "polls": len(polls),
            "acknowledged (201)": len(load.acknowledged),
            "statuses": dict(load.statuses),
            "load seconds": round(load_seconds, 1),
            "load held back for the backlog (s)": round(load.held_seconds, 1),
            **dict(faults),
            "worker (re)starts by the supervisor": supervisor["count"],
            "lost": figures["lost"],
            "duplicated": figures["duplicated"] + figures["over_counted"],
            "tally mismatches": figures["tally_off"],
            "results mismatches": figures["results_off"],
            "seconds to converge": round(seconds, 1),
        }
    )
    print("\n=== fault run ===\n" + "\n".join(f"  {k}: {v}" for k, v in FIGURES.items()))

    assert load.statuses == Counter({201: VOTES}), load.statuses
    assert faults["worker process SIGKILLs"] >= 3
    assert figures == {"lost": 0, "duplicated": 0, "tally_off": 0, "over_counted": 0, "results_off": 0}
    assert seconds <= CONVERGE_LIMIT


def test_broker_down_votes_are_accepted_and_delivered_after_it_returns(chaos_stack, rabbit, platform):
    polls = platform.create_polls(2, choices=2, prefix="Broker down")
    platform.wait_warm(polls)
    rabbit.stop()
    try:
        load = Load(platform, polls, 40, first_user=2_000_000, duration=2.0, threads=8)
        load.run()
        assert load.statuses == Counter({201: 40})
        assert verdict(snapshot(chaos_stack, platform, polls), load.acknowledged, polls)["lost"] == 0
        # Nothing can have reached choice_service yet: the events wait in the outbox.
        assert sum(snapshot(chaos_stack, platform, polls).tallies.values()) == 0
    finally:
        rabbit.start()
    ensure_running(chaos_stack)
    seconds, figures = converge(chaos_stack, platform, polls, load.acknowledged, limit=60)
    print(f"\n=== broker down: 40 votes accepted, delivered {seconds:.1f} s after the broker returned ===")
    assert figures == {"lost": 0, "duplicated": 0, "tally_off": 0, "over_counted": 0, "results_off": 0}


def test_choice_service_down_warm_replicas_work_and_the_breaker_guards_cold_ones(chaos_stack, platform):
    warm = platform.create_polls(1, choices=2, prefix="Warm")
    platform.wait_warm(warm)
    cold = platform.create_polls(1, choices=2, prefix="Cold")  # vote_service may not know it yet
    gateway = platform.gateway_url
    with requests.Session() as http:
        # choice_service goes down; block vote_service's knowledge of the cold poll's choices by
        # using a choice id it has never heard of (a replica miss that must ask choice_service).
        chaos_stack.stop_process("choices.web")
        try:
            vote = http.post(
                f"{gateway}/api/v1/votes/",
                json={"poll": warm[0].id, "choice": warm[0].choices[0]},
                headers={"Authorization": f"Bearer {platform.token(3_000_001)}"},
                timeout=15,
            )
            assert vote.status_code == 201, vote.text  # warm replicas: no call to choice_service
            answers = []
            for i in range(12):
                unknown_choice = str(uuid.uuid4())
                started = time.perf_counter()
                response = http.post(
                    f"{gateway}/api/v1/votes/",
                    json={"poll": cold[0].id, "choice": unknown_choice},
                    headers={"Authorization": f"Bearer {platform.token(3_000_100 + i)}"},
                    timeout=15,
                )
                answers.append(
                    (
                        response.status_code,
                        response.headers.get("Retry-After"),
                        time.perf_counter() - started,
                        response.headers.get("Content-Type", ""),
                    )
                )
            statuses = [a[0] for a in answers]
            assert set(statuses) == {503}, answers
            assert all(a[1] and int(a[1]) >= 1 for a in answers)
            assert all(a[3].startswith("application/problem+json") for a in answers)
            fast = [a[2] for a in answers[-3:]]  # the breaker is open by now: no network wait
            print(f"\n=== choice_service down: breaker-open answers in {[round(s * 1000, 1) for s in fast]} ms ===")
        finally:
            chaos_stack.start_process("choices.web", wait=True, timeout=90)
        # After recovery (breaker reset timeout elapsed), the cold poll works again.
        deadline = time.monotonic() + 40
        while True:
            response = http.post(
                f"{gateway}/api/v1/votes/",
                json={"poll": cold[0].id, "choice": cold[0].choices[0]},
                headers={"Authorization": f"Bearer {platform.token(3_000_500)}"},
                timeout=15,
            )
            if response.status_code == 201 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert response.status_code == 201, response.text


def test_a_poison_event_lands_in_the_dead_letter_queue(chaos_stack, rabbit):
    from celery import Celery
    from kombu import Connection, Queue

    from servicekit.events import bus

    poison = {
        "id": str(uuid.uuid4()),
        "type": "vote.cast",
        "occurred_at": "2026-01-01T00:00:00Z",
        "producer": "votes",
        "aggregate_id": "x",
        "data": {"id": "not-a-uuid"},
        "traceparent": None,
    }
    with Connection(rabbit.url, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        bus.declare_topology(producer.channel)
        bus.publish_event(producer, Celery("poison", broker=rabbit.url), poison)
        dlq = Queue(bus.dead_letter_queue_name("choices"), no_declare=True)(conn.default_channel)
        deadline = time.monotonic() + 30
        found = None
        while found is None and time.monotonic() < deadline:
            message = dlq.get(no_ack=False)
            if message is not None and message.headers.get("event_id") == poison["id"]:
                found = message
                message.ack()
            elif message is not None:
                message.requeue()
            time.sleep(0.2)
    assert found is not None, "the poison event did not reach choices.events.dlq"
    listed = chaos_stack.manage("choices", "list_dead_letters").stdout
    assert poison["id"] in listed


def test_reconciliation_repairs_drift(chaos_stack, platform):
    """A tally that drifted from the ledger (here: corrupted by hand) is repaired, and the repair reported."""
    import psycopg

    from .faults import database_url

    polls = platform.create_polls(1, choices=2, prefix="Drift")
    platform.wait_warm(polls)
    poll = polls[0]
    load = Load(platform, polls, 6, first_user=4_000_000, duration=1.0, threads=3)
    load.run()
    seconds, figures = converge(chaos_stack, platform, polls, load.acknowledged, limit=60)
    assert not any(figures.values())
    with psycopg.connect(database_url(chaos_stack, "CHOICE_DATABASE_URL")) as conn:
        conn.execute("UPDATE choices_choice SET votes = votes + 5 WHERE id = %s", [poll.choices[0]])
    drifted = verdict(snapshot(chaos_stack, platform, polls), load.acknowledged, polls)
    assert drifted["tally_off"] == 5
    report = chaos_stack.manage("choices", "reconcile_tallies", "--poll", poll.id).stdout
    assert f"choice {poll.choices[0]} tally" in report and "1 tally(ies) repaired" in report, report
    assert not any(verdict(snapshot(chaos_stack, platform, polls), load.acknowledged, polls).values())
