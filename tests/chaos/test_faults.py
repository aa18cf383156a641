"""Fault tests: every operation acknowledged to a client is reflected exactly once, whatever fails.

The main run mixes casts, changes (``PATCH /api/v2/votes/{id}/``) and retractions (``DELETE``) from
distinct users across the polls through the gateway, and the owner closes a quarter of the polls
mid-load, while a fault thread SIGKILLs a consuming worker every few seconds, restarts RabbitMQ
gracefully and with kill -9, kills the relay (vote_service's worker) mid-stream, and publishes 10% of
all events a second time. Then, within 30 s, compared per vote id: vote_service's ledger holds exactly
what the clients were told (acknowledged casts and changes, less acknowledged retractions),
choice_service's projection is the same set with the same choices, ``/results`` and the public
tallies agree per choice, and no vote operation was accepted after its poll's close answered 200.
The figures are printed at the end.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from scripts.loadgen import (
    SUCCESS,
    CloseRace,
    Op,
    VoteClient,
    accepted_after,
    answer_status,
    close_race_problems,
    database_url,
    expected_ledger,
    projection,
    timed,
    wait_for,
)
from scripts.platform_stack import child_pids

from .conftest import POLLS, VOTES
from .faults import applied_vote_events, republish_fraction, snapshot, verdict

CONSUMING_WORKERS = ("choices.worker", "polls.worker", "votes.worker")
CONVERGE_LIMIT = 30.0
# Acknowledged vote operations allowed in flight before the load holds back (what the pipeline drains in < 30 s).
MAX_BACKLOG = 600
FIGURES: dict[str, object] = {}
# What one user does, in order; drawn with these weights (mean 1.95 operations per user).
SCRIPTS = [
    (("cast",), 35),
    (("cast", "change"), 20),
    (("cast", "retract"), 15),
    (("cast", "change", "change"), 10),
    (("cast", "change", "retract"), 10),
    (("cast", "retract", "cast"), 10),
]


def pool_processes(stack, name: str) -> list[int]:
    """PIDs of the child processes of a process of the stack (Celery's prefork pool, the web server's workers)."""
    return child_pids(stack.processes[name].pid)


def as_text(body: bytes | str) -> str:
    return body.decode() if isinstance(body, bytes) else body


def ensure_running(stack, names=CONSUMING_WORKERS) -> None:
    for name in names:
        if not stack.processes[name].alive():
            stack.start_process(name, wait=True, timeout=90)


def converge(stack, platform, polls, expected, limit: float = CONVERGE_LIMIT):
    """Seconds until ledger, projection, results and tallies agree (or the last figures after ``limit`` s)."""
    started = time.monotonic()
    while True:
        figures = verdict(snapshot(stack, platform, polls), expected, polls)
        elapsed = time.monotonic() - started
        print(f"  converging: {elapsed:5.1f} s {figures}", flush=True)
        if not any(figures.values()) or elapsed > limit:
            return elapsed, figures
        time.sleep(0.5)


class Load:
    """Scripts of vote operations (cast / change / retract), one user each, spread over ``duration``
    seconds by ``threads`` clients; the owner closes ``closing`` polls at given progress points."""

    def __init__(
        self,
        platform,
        polls,
        operations: int,
        *,
        first_user: int,
        duration: float,
        threads: int = 24,
        closing: dict[str, float] | None = None,
        scripts=SCRIPTS,
    ):
        self.platform = platform
        self.polls = {p.id: p for p in polls}
        rng = random.Random(first_user)
        kinds, weights = zip(*scripts, strict=True)
        self.plan: list[tuple[int, str, tuple[str, ...]]] = []
        planned = 0
        for i in itertools.count():
            if planned >= operations:
                break
            script = rng.choices(kinds, weights)[0]
            self.plan.append((first_user + i, polls[i % len(polls)].id, script))
            planned += len(script)
        self.planned = planned
        self.seed = first_user
        self.tokens = {user: platform.token(user) for user, _, _ in self.plan}
        self.interval = duration / len(self.plan)
        self.threads = threads
        self.closing = dict(closing or {})
        self.ops: list[Op] = []
        self.close_ops: dict[str, list[Op]] = {}
        self.closed_at: dict[str, float] = {}  # poll -> when its close's 200 was read
        self.close_sent: dict[str, float] = {}
        self.done = 0
        self.held_seconds = 0.0
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def progress(self) -> float:
        return self.done / len(self.plan)

    @property
    def acknowledged(self) -> int:
        return sum(o.ok for o in list(self.ops))

    def _script(self, index: int) -> None:
        user, poll_id, script = self.plan[index]
        session = getattr(self._local, "session", None) or requests.Session()
        self._local.session = session
        client = VoteClient(self.platform, session, user, token=self.tokens[user])
        rng = random.Random(self.seed * 7 + index)
        choices = self.polls[poll_id].choices
        try:
            for kind in script:
                if kind == "cast":
                    op = client.cast(poll_id, rng.choice(choices))
                elif kind == "change":
                    op = client.change(poll_id, rng.choice([c for c in choices if c != client.choice]))
                else:
                    op = client.retract(poll_id)
                with self._lock:
                    self.ops.append(op)
                if op.status != SUCCESS[kind]:
                    break  # refused (the poll closed) or unanswered: the rest of the script cannot follow
        finally:
            with self._lock:
                self.done += 1

    def _closer(self, stop: threading.Event, errors: list) -> None:
        owner = self.platform.token(self.platform.owner_id)
        try:
            with requests.Session() as session:
                for poll_id, threshold in sorted(self.closing.items(), key=lambda kv: kv[1]):
                    while self.progress < threshold and not stop.is_set():
                        time.sleep(0.05)
                    if stop.is_set():
                        return
                    url = f"{self.platform.gateway_url}/api/v1/polls/{poll_id}/close/"
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline:
                        sent, answered, response, error = timed(
                            session, "POST", url, json={}, headers={"Authorization": f"Bearer {owner}"}
                        )
                        status = answer_status(response, error)
                        self.close_sent.setdefault(poll_id, sent)
                        self.close_ops.setdefault(poll_id, []).append(Op("close", 0, poll_id, sent, answered, status))
                        if status == 200:
                            self.closed_at[poll_id] = answered
                            break
                        if status not in (502, 503, 504) and isinstance(status, int):
                            raise AssertionError(f"close of {poll_id} answered {status}: {response.text[:300]}")
                        time.sleep(0.2)  # 503 + Retry-After: nothing changed; ask again
        except BaseException as exc:  # surfaced in the test thread
            errors.append(exc)

    def run(self, backlog=None, max_backlog: int = 0) -> None:
        """Submit the scripts on schedule; with ``backlog`` (a callable), hold back while more than
        ``max_backlog`` acknowledged operations are not yet applied downstream (a sustained load, not a
        flood: the pipeline of this machine sets the pace, faults still hit it mid-stream)."""
        stop = threading.Event()
        errors: list[BaseException] = []
        closer = threading.Thread(target=self._closer, args=(stop, errors), daemon=True)
        closer.start()
        started = time.monotonic()
        held = 0.0
        try:
            with ThreadPoolExecutor(self.threads) as pool:
                for index in range(len(self.plan)):
                    if backlog is not None and index % 25 == 0:
                        waited = time.monotonic()
                        while backlog() > max_backlog and time.monotonic() - waited < 60:
                            time.sleep(0.5)
                        held += time.monotonic() - waited
                    delay = started + held + index * self.interval - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    pool.submit(self._script, index)
            closer.join(90)
        finally:
            stop.set()
        self.held_seconds = held
        assert not errors, errors
        assert set(self.closed_at) == set(self.closing), f"closes that never answered 200: {self.close_ops}"

    def status_problems(self) -> list[str]:
        """Every operation answered as it must: accepted on an open poll (answered before its poll's
        close was sent), refused (422) once the close answered 200 (sent after that), either while both
        were in flight: a request sent just before the close can reach vote_service after the seal."""
        problems = []
        for op in self.ops:
            closed_at = self.closed_at.get(op.poll)
            close_sent = self.close_sent.get(op.poll)
            if close_sent is None or op.answered < close_sent:
                if op.status != SUCCESS[op.kind]:
                    problems.append(f"{op.kind} on an open poll answered {op.status}")
            elif closed_at is not None and op.sent > closed_at:
                if op.status != 422:
                    problems.append(f"{op.kind} sent after its poll's close answered {op.status}")
            elif op.status not in (SUCCESS[op.kind], 422):
                problems.append(f"{op.kind} sent during its poll's close answered {op.status}")
        return problems

    def figures(self) -> dict[str, object]:
        kinds = Counter(f"{o.kind} {o.status}" for o in self.ops)
        return {
            "operations": len(self.ops),
            "users (scripts)": len(self.plan),
            "by kind and answer": dict(sorted(kinds.items())),
            "polls closed mid-load": len(self.closed_at),
            "close took (s, max)": round(
                max((self.closed_at[p] - self.close_sent[p] for p in self.closed_at), default=0.0), 3
            ),
            "operations sent after their poll's close answered": sum(
                1 for o in self.ops if o.poll in self.closed_at and o.sent > self.closed_at[o.poll]
            ),
        }


def test_every_acknowledged_operation_is_reflected_exactly_once_under_faults(chaos_stack, rabbit, platform, supervisor):
    stack = chaos_stack
    polls = platform.create_polls(POLLS, choices=3, prefix="Chaos")
    platform.wait_warm(polls)
    # A quarter of the polls is closed mid-load, one after another.
    closing = {poll.id: 0.2 + 0.6 * n / max(1, len(polls) // 4) for n, poll in enumerate(polls[: len(polls) // 4])}
    # Operations on polls closed mid-load stop at the first refusal: plan ~15% more than the floor.
    load = Load(
        platform,
        polls,
        int(VOTES * 1.15),
        first_user=1_000_000,
        duration=max(50.0, VOTES / 60),
        threads=16,
        closing=closing,
    )
    applied_before = applied_vote_events(stack)

    def backlog() -> int:
        """Acknowledged vote operations whose event choice_service has not applied yet."""
        return load.acknowledged - (applied_vote_events(stack) - applied_before)

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
    expected, uncertain = expected_ledger(load.ops)
    _, figures = converge(stack, platform, polls, expected, limit=CONVERGE_LIMIT - (time.monotonic() - faults_stopped))
    seconds = time.monotonic() - faults_stopped
    late = {p: accepted_after([o for o in load.ops if o.poll == p], t) for p, t in load.closed_at.items()}
    late_count = sum(len(v) for v in late.values())
    statuses = load.status_problems()

    FIGURES.update(
        {
            "operations planned": load.planned,
            "polls": len(polls),
            **load.figures(),
            "acknowledged": load.acknowledged,
            "live votes expected": len(expected),
            "unanswered (outcome unknown)": len(uncertain),
            "load seconds": round(load_seconds, 1),
            "load held back for the backlog (s)": round(load.held_seconds, 1),
            **dict(faults),
            "worker (re)starts by the supervisor": supervisor["count"],
            "accepted after their poll's close": late_count,
            "wrongly answered operations": len(statuses),
            **{f"mismatches: {k}": v for k, v in figures.items()},
            "seconds to converge": round(seconds, 1),
        }
    )
    print("\n=== fault run ===\n" + "\n".join(f"  {k}: {v}" for k, v in FIGURES.items()))

    assert len(load.ops) >= VOTES, f"only {len(load.ops)} operations ran"
    assert not statuses, f"{len(statuses)} wrongly answered operations, e.g. {Counter(statuses).most_common(5)}"
    assert late_count == 0, late
    assert not uncertain
    assert faults["worker process SIGKILLs"] >= 3
    assert not any(figures.values()), figures
    assert seconds <= CONVERGE_LIMIT


def test_broker_down_votes_are_accepted_and_delivered_after_it_returns(chaos_stack, rabbit, platform):
    polls = platform.create_polls(2, choices=2, prefix="Broker down")
    platform.wait_warm(polls)
    rabbit.stop()
    try:
        load = Load(platform, polls, 40, first_user=2_000_000, duration=2.0, threads=8)
        load.run()
        assert not load.status_problems(), load.status_problems()[:5]
        expected, _ = expected_ledger(load.ops)
        figures = verdict(snapshot(chaos_stack, platform, polls), expected, polls)
        assert figures["lost"] == figures["phantom"] == figures["results off"] == 0, figures
        # Nothing can have reached choice_service yet: the events wait in the outbox.
        assert projection(chaos_stack, [p.id for p in polls]) == {}
    finally:
        rabbit.start()
    ensure_running(chaos_stack)
    seconds, figures = converge(chaos_stack, platform, polls, expected, limit=60)
    print(f"\n=== broker down: {len(load.ops)} operations accepted, delivered {seconds:.1f} s after it returned ===")
    assert not any(figures.values()), figures


@pytest.mark.parametrize("fault", ["broker stopped", "broker and vote_service killed mid-close"])
def test_close_gate_holds_with_the_broker_stopped(chaos_stack, rabbit, platform, fault):
    """≥ 50 voters keep voting while the owner closes, the broker down (the close cannot travel as an
    event; the gate is synchronous), or killed together with a vote_service web worker and its Celery
    worker while the close is in flight: no vote accepted after the close's 200, the ledger exact."""
    stack = chaos_stack
    poll = platform.create_polls(1, choices=3, prefix=f"Gate, {fault}")[0]
    platform.wait_warm([poll])
    killed: list[str] = []

    def kill_mid_close() -> None:
        rabbit.kill()
        killed.append("rabbitmq (kill -9)")
        workers = pool_processes(stack, "votes.web")
        if workers:
            os.kill(workers[0], signal.SIGKILL)
            killed.append(f"votes.web worker {workers[0]}")
        stack.kill("votes.worker")  # the supervisor starts it again
        killed.append("votes.worker")

    first_user = 6_000_000 if fault == "broker stopped" else 6_100_000
    race = CloseRace(platform, poll, first_user=first_user, voters=50, changers=10)
    if fault == "broker stopped":
        rabbit.stop()
    try:
        race.run(during_close=None if fault == "broker stopped" else kill_mid_close)
        print(
            f"\n=== close gate, {fault} {killed or ''} ===\n"
            + "\n".join(f"  {k}: {v}" for k, v in race.figures().items())
        )
        ledger = platform.ledger(poll.id)
        problems = close_race_problems(race, ledger)
        assert not problems, "\n".join(problems)
        assert platform.results(poll.id)["total"] == len(ledger)
    finally:
        rabbit.start()
    ensure_running(stack)
    expected, uncertain = expected_ledger(race.ops)
    if not uncertain:
        assert ledger == expected
    started = time.monotonic()
    wait_for("choice_service's projection equal to the ledger", lambda: projection(stack, [poll.id]) == ledger, 60)
    print(f"  projection equal to the ledger {time.monotonic() - started:.1f} s after the broker returned")


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


def test_a_poison_event_lands_in_the_dead_letter_queue_alone(chaos_stack, rabbit, platform):
    """One message carrying a poison envelope between two good ones: the good ones are applied, the
    poison one is dead-lettered alone (choice_service's DLQ and its dead-letter table)."""
    import json

    from kombu import Connection, Queue

    from servicekit.events import bus

    poll = platform.create_polls(1, choices=2, prefix="Poison")[0]
    platform.wait_warm([poll])
    load = Load(platform, [poll], 1, first_user=4_500_000, duration=0.1, threads=1, scripts=[(("cast",), 1)])
    load.run()
    vote_id = load.ops[0].vote
    with psycopg.connect(database_url(chaos_stack, "VOTE_DATABASE_URL")) as conn:
        real = conn.execute(
            "SELECT envelope FROM servicekit_outbox_event WHERE event_type = 'vote.cast' AND aggregate_id = %s",
            [vote_id],
        ).fetchone()[0]
    good = [{**real, "id": str(uuid.uuid4())} for _ in range(2)]  # redeliveries: harmless by version
    poison = {
        "id": str(uuid.uuid4()),
        "type": "vote.cast",
        "occurred_at": "2026-01-01T00:00:00Z",
        "producer": "votes",
        "aggregate_id": "x",
        "version": 1,
        "data": {"id": "not-a-uuid"},
        "traceparent": None,
    }
    batch = [good[0], poison, good[1]]
    with Connection(rabbit.url, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        bus.declare_topology(producer.channel)
        bus.publish_batch(producer, "vote.cast", [json.dumps(e) for e in batch])
        dlq = Queue(bus.dead_letter_queue_name("choices"), no_declare=True)(conn.default_channel)
        deadline = time.monotonic() + 30
        found = None
        while found is None and time.monotonic() < deadline:
            message = dlq.get(no_ack=False)
            if message is None:
                time.sleep(0.2)
            elif poison["id"] in as_text(message.body):
                found = message
                message.ack()
            else:
                message.requeue()
    assert found is not None, "the poison event did not reach choices.events.dlq"
    body = as_text(found.body)
    assert good[0]["id"] not in body and good[1]["id"] not in body, f"the poison event is not alone: {body[:500]}"

    def good_applied() -> bool:
        with psycopg.connect(database_url(chaos_stack, "CHOICE_DATABASE_URL")) as conn:
            rows = conn.execute(
                "SELECT count(DISTINCT event_id) FROM servicekit_inbox_event WHERE event_id::text = ANY(%s)",
                [[e["id"] for e in good]],
            ).fetchone()
        return rows[0] == 2

    wait_for("the good events of the poisoned batch applied", good_applied)
    assert projection(chaos_stack, [poll.id]) == {vote_id: load.ops[0].choice}
    listed = chaos_stack.manage("choices", "list_dead_letters").stdout
    assert poison["id"] in listed


def test_reconciliation_repairs_drift(chaos_stack, platform):
    """A projection that drifted from the ledger (here: corrupted by hand: a lost event, a phantom vote
    and a stale choice) is repaired set-wise by reconciliation, and the tallies follow."""
    polls = platform.create_polls(1, choices=2, prefix="Drift")
    platform.wait_warm(polls)
    poll = polls[0]
    load = Load(platform, polls, 6, first_user=4_000_000, duration=1.0, threads=3, scripts=[(("cast",), 1)])
    load.run()
    expected, _ = expected_ledger(load.ops)
    seconds, figures = converge(chaos_stack, platform, polls, expected, limit=60)
    assert not any(figures.values()), figures
    lost, stale = sorted(expected)[:2]
    other = {c: next(x for x in poll.choices if x != c) for c in poll.choices}
    phantom = str(uuid.uuid4())
    with psycopg.connect(database_url(chaos_stack, "CHOICE_DATABASE_URL")) as conn:
        conn.execute("DELETE FROM choices_voteprojection WHERE id = %s", [lost])
        conn.execute(
            "UPDATE choices_voteprojection SET choice_id = %s, version = 0 WHERE id = %s",
            [other[expected[stale]], stale],
        )
        conn.execute(
            "INSERT INTO choices_voteprojection (id, poll_id, choice_id, deleted, version)"
            " VALUES (%s, %s, %s, false, 1)",
            [phantom, poll.id, poll.choices[0]],
        )
    corrupted = snapshot(chaos_stack, platform, polls)
    drifted = verdict(corrupted, expected, polls)
    assert drifted["projection missing"] == drifted["projection extra"] == drifted["projection wrong choice"] == 1
    # The public tallies are derived from the (corrupted) projection. Compared per choice they may even
    # agree with the ledger (the three faults can cancel out on two choices): the per-vote-id check
    # above is what sees the drift.
    derived = Counter(corrupted.projection.values())
    assert {c: n for c, n in corrupted.tallies.items() if n} == dict(derived), (corrupted.tallies, derived)
    report = chaos_stack.manage("choices", "reconcile_tallies", "--poll", poll.id)
    print(f"\n=== reconciliation ===\n{report.stdout}")
    figures = verdict(snapshot(chaos_stack, platform, polls), expected, polls)
    assert not any(figures.values()), figures
