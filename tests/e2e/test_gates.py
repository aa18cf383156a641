"""Gates that hold (issue 9), proven through the gateway on the session's real stack.

- close vs ≥ 50 concurrent voters (casts from fresh users, plus changes and retractions of standing
  votes): no vote operation sent after the close's 200 was read is accepted, and vote_service's
  ledger, per vote id, is exactly what the clients were told; ``/results`` and choice_service's
  projection agree. The same with a vote_service process (a web worker and the Celery worker)
  SIGKILLed while the close is in flight. The broker-stopped variant needs a broker of its own: it is
  in tests/chaos (``test_close_gate_holds_with_the_broker_stopped``).
- open vs concurrent choice edits: no choice write sent after the open's 200 was read is accepted;
  the choices choice_service and vote_service know afterwards are those acknowledged before the freeze.
- the gated service unreachable: close (vote_service down) and open (choice_service down) answer 503
  problem+json with Retry-After and change nothing (status, version, no event); after revival they work.
- clock skew: real envelopes of a poll re-published with ``occurred_at`` 5 minutes behind and ahead;
  the replicas follow versions, so the outcome is the one the versions say.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import requests

from scripts.loadgen import (
    CloseRace,
    Op,
    Platform,
    Poll,
    answer_status,
    close_race_problems,
    database_url,
    expected_ledger,
    projection,
    publish,
    timed,
    wait_for,
)
from scripts.platform_stack import Stack, child_pids

pytestmark = pytest.mark.stack

VOTERS = 50
CHANGERS = 10
EDITORS = 8


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def results_counts(platform: Platform, poll_id: str) -> tuple[int, dict[str, int]] | None:
    body = platform.results(poll_id)
    if body is None:
        return None
    return body["total"], {c["choice"]: c["votes"] for c in body["choices"] if c["votes"]}


def owner_platform(stack: Stack, owner_id: int) -> Platform:
    return Platform(
        gateway_url=stack.gateway_url, run_dir=stack.run_dir, owner_id=owner_id, votes_url=stack.service_url("votes")
    )


def open_poll(platform: Platform, *, choices: int = 3, prefix: str) -> Poll:
    poll = platform.create_polls(1, choices=choices, prefix=prefix)[0]
    platform.wait_warm([poll])
    return poll


def assert_close_race(stack: Stack, platform: Platform, race: CloseRace, label: str) -> None:
    """The close gate held: nothing accepted after the close's 200; the ledger, per vote id, is what
    the clients were told; /results and choice_service's projection agree with the ledger."""
    figures = race.figures()
    print(f"\n=== {label} ===\n" + "\n".join(f"  {k}: {v}" for k, v in figures.items()))
    ledger = platform.ledger(race.poll.id)
    problems = close_race_problems(race, ledger)
    assert not problems, "\n".join(problems)
    expected, uncertain = expected_ledger(race.ops)
    if not uncertain:
        assert ledger == expected
    casts = sum(o.status == 201 for o in race.ops if o.kind == "cast")
    retracts = sum(o.status == 204 for o in race.ops if o.kind == "retract")
    print(f"  201 casts: {casts}, 204 retracts: {retracts}, ledger: {len(ledger)}, no answer: {len(uncertain)}")
    if not uncertain:
        assert len(ledger) == casts - retracts

    want = (len(ledger), dict(Counter(ledger.values())))
    wait_for("/results equal to the ledger", lambda: results_counts(platform, race.poll.id) == want, timeout=10)
    wait_for("choice_service's projection equal to the ledger", lambda: projection(stack, [race.poll.id]) == ledger)


# --------------------------------------------------------------------------------------------------
# close vs voters
# --------------------------------------------------------------------------------------------------


def test_no_vote_is_accepted_after_the_close_answered(stack: Stack) -> None:
    platform = owner_platform(stack, 920_001)
    poll = open_poll(platform, prefix="Gate close")
    race = CloseRace(platform, poll, first_user=5_000_000, voters=VOTERS, changers=CHANGERS).run()
    assert_close_race(stack, platform, race, f"close vs {VOTERS} voters and {CHANGERS} changers")


def test_close_gate_holds_with_a_vote_service_process_killed_mid_close(stack: Stack) -> None:
    platform = owner_platform(stack, 920_002)
    poll = open_poll(platform, prefix="Gate close, kill")
    killed: list[str] = []

    def kill_vote_service() -> None:
        # One web worker of vote_service (the server starts another) and its Celery worker (the relay).
        workers = child_pids(stack.processes["votes.web"].pid)
        if workers:
            os.kill(workers[0], signal.SIGKILL)
            killed.append(f"votes.web worker {workers[0]}")
        stack.kill("votes.worker")
        killed.append("votes.worker")

    race = CloseRace(platform, poll, first_user=5_100_000, voters=VOTERS, changers=CHANGERS)
    try:
        race.run(during_close=kill_vote_service)
    finally:
        if not stack.processes["votes.worker"].alive():
            stack.start_process("votes.worker", wait=True, timeout=90)
    assert killed, "nothing was killed"
    assert_close_race(stack, platform, race, f"close vs voters, killed mid-close: {', '.join(killed)}")


# --------------------------------------------------------------------------------------------------
# open vs choice edits
# --------------------------------------------------------------------------------------------------


class ChoiceEditors:
    """``editors`` threads keep creating, editing and deleting choices of a draft poll, each its own
    choices (so the acknowledged outcome of each is unambiguous), while the owner opens it."""

    def __init__(self, platform: Platform, poll: Poll, *, editors: int = EDITORS, limit: float = 60.0):
        self.platform = platform
        self.poll = poll
        self.editors = editors
        self.limit = limit
        self.token = platform.token(platform.owner_id)
        self.ops: list[Op] = []
        self.opened_at: float | None = None
        self.open_sent: float | None = None
        self.open_ops: list[Op] = []
        self._stop = threading.Event()
        self._refused: set[int] = set()
        self._lock = threading.Lock()

    def _editor(self, index: int) -> None:
        url = self.platform.gateway_url + "/api/v1/choices/"
        headers = {"Authorization": f"Bearer {self.token}"}
        own: list[str] = []
        texts = (f"Editor {index} text {n}" for n in itertools.count())
        with requests.Session() as session:
            step = 0
            while not self._stop.is_set():
                step += 1
                if len(own) < 2:
                    kind, text = "choice.create", next(texts)
                    sent, answered, response, error = timed(
                        session, "POST", url, json={"poll": self.poll.id, "text": text}, headers=headers
                    )
                    choice = response.json()["id"] if response is not None and response.status_code == 201 else None
                    if choice:
                        own.append(choice)
                elif step % 3:
                    kind, text, choice = "choice.update", next(texts), own[step % 2]
                    sent, answered, response, error = timed(
                        session, "PATCH", f"{url}{choice}/", json={"text": text}, headers=headers
                    )
                else:
                    kind, text, choice = "choice.delete", None, own[step % 2]
                    sent, answered, response, error = timed(session, "DELETE", f"{url}{choice}/", headers=headers)
                    if response is not None and response.status_code == 204:
                        own.remove(choice)
                op = Op(kind, index, self.poll.id, sent, answered, answer_status(response, error))
                op.choice, op.detail = choice, text
                with self._lock:
                    self.ops.append(op)
                    if self.opened_at is not None and sent > self.opened_at and not op.ok and not op.unknown:
                        self._refused.add(index)
                self._stop.wait(0.02)

    def run(self) -> ChoiceEditors:
        deadline = time.monotonic() + self.limit
        threads = [threading.Thread(target=self._editor, args=(i,), daemon=True) for i in range(self.editors)]
        for thread in threads:
            thread.start()
        try:
            while sum(o.ok for o in list(self.ops)) < 4 * self.editors and time.monotonic() < deadline:
                time.sleep(0.02)
            url = f"{self.platform.gateway_url}/api/v1/polls/{self.poll.id}/open/"
            with requests.Session() as session:
                while time.monotonic() < deadline:
                    sent, answered, response, error = timed(
                        session, "POST", url, json={}, headers={"Authorization": f"Bearer {self.token}"}
                    )
                    self.open_sent = self.open_sent or sent
                    status = answer_status(response, error)
                    self.open_ops.append(Op("open", 0, self.poll.id, sent, answered, status))
                    if status == 200:
                        self.opened_at = answered
                        break
                    assert status == 503 or isinstance(status, str), (
                        f"open answered {status}: {response.text[:300] if response else ''}"
                    )
                    time.sleep(0.2)
            while self.opened_at is not None and time.monotonic() < deadline:
                with self._lock:
                    everyone_refused = len(self._refused) == self.editors
                if everyone_refused and time.monotonic() > self.opened_at + 1.0:
                    break
                time.sleep(0.05)
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(60)
        return self

    def expected(self) -> tuple[dict[str, str], set[int]]:
        """``({choice id: text}, editors with an unanswered write)`` from the acknowledged writes."""
        choices: dict[str, str] = {}
        uncertain: set[int] = set()
        for op in sorted(self.ops, key=lambda o: o.sent):
            if op.unknown:
                uncertain.add(op.user)
            if not op.ok:
                continue
            if op.kind == "choice.delete":
                choices.pop(op.choice, None)
            else:
                choices[op.choice] = op.detail
        return choices, uncertain


def choice_texts(platform: Platform, poll_id: str, token: str) -> dict[str, str]:
    response = platform.session.get(
        f"{platform.gateway_url}/api/v1/choices/",
        params={"poll": poll_id, "page_size": 100},
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    return {c["id"]: c["text"] for c in response.json()["results"]}


def test_no_choice_write_is_accepted_after_the_open_answered(stack: Stack) -> None:
    platform = owner_platform(stack, 920_003)
    poll = platform.create_draft(choices=2, prefix="Gate open")
    base = choice_texts(platform, poll.id, platform.token(platform.owner_id))
    editors = ChoiceEditors(platform, poll).run()
    assert editors.opened_at is not None, f"the open never answered 200: {[o.status for o in editors.open_ops]}"
    token = editors.token
    at_freeze = choice_texts(platform, poll.id, token)  # read right after the open's 200

    after = [o for o in editors.ops if o.sent > editors.opened_at]
    late = [o for o in after if o.ok]
    kinds = Counter((o.kind, o.status) for o in editors.ops)
    print(
        "\n=== open vs choice edits ===\n"
        f"  writes: {len(editors.ops)} {dict(sorted(kinds.items(), key=str))}\n"
        f"  open attempts: {[o.status for o in editors.open_ops]},"
        f" took {editors.opened_at - editors.open_sent:.3f} s\n"
        f"  sent after the open's 200: {len(after)}, accepted: {len(late)}"
    )
    assert sum(o.ok for o in editors.ops if o.sent < editors.open_sent) >= 4 * EDITORS, "the editors were not editing"
    assert len(after) >= EDITORS, "no write was sent after the open: no race"
    assert not late, f"{len(late)} choice writes accepted after the open's 200: {late[:5]}"
    assert {o.status for o in after if not o.unknown} <= {409}, Counter(o.status for o in after)

    expected, uncertain = editors.expected()
    assert not uncertain, f"editors {uncertain} got no answer to a write"
    expected = {**base, **expected}
    assert at_freeze == expected, "the choices at the freeze are not the acknowledged ones"
    assert choice_texts(platform, poll.id, token) == expected, "the choices changed after the open"

    # vote_service sees the same choices (ids) as choice_service: a vote works for each, and not for
    # a choice deleted before the freeze.
    wait_for(
        "vote_service's results list exactly the frozen choices",
        lambda: {c["choice"] for c in (platform.results(poll.id) or {}).get("choices", [])} == set(expected),
    )
    with requests.Session() as session:
        for n, choice in enumerate(sorted(expected)):
            vote = session.post(
                f"{platform.gateway_url}/api/v1/votes/",
                json={"poll": poll.id, "choice": choice},
                headers={"Authorization": f"Bearer {platform.token(5_200_000 + n)}"},
                timeout=15,
            )
            assert vote.status_code == 201, vote.text
        deleted = next((o.choice for o in editors.ops if o.kind == "choice.delete" and o.ok), None)
        if deleted:
            vote = session.post(
                f"{platform.gateway_url}/api/v1/votes/",
                json={"poll": poll.id, "choice": deleted},
                headers={"Authorization": f"Bearer {platform.token(5_200_999)}"},
                timeout=15,
            )
            assert vote.status_code == 422, vote.text


def test_open_with_fewer_than_two_choices_is_refused_by_choice_service(stack: Stack) -> None:
    platform = owner_platform(stack, 920_004)
    poll = platform.create_draft(choices=1, prefix="Gate open, one choice")
    token = platform.token(platform.owner_id)
    response = platform.session.post(
        f"{platform.gateway_url}/api/v1/polls/{poll.id}/open/", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 409, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"].endswith("/not-enough-choices") and body["choices"] == 1, body
    assert poll_status(platform, poll.id, token) == "draft"


# --------------------------------------------------------------------------------------------------
# the gated service unreachable
# --------------------------------------------------------------------------------------------------


def poll_status(platform: Platform, poll_id: str, token: str) -> str:
    response = platform.session.get(
        f"{platform.gateway_url}/api/v1/polls/{poll_id}/", headers={"Authorization": f"Bearer {token}"}, timeout=15
    )
    assert response.status_code == 200, response.text
    return response.json()["status"]


def internal_poll(stack: Stack, platform: Platform, poll_id: str) -> dict:
    response = requests.get(
        f"{stack.service_url('polls')}/internal/polls/{poll_id}/",
        headers={"Authorization": f"Service {platform.service_token('votes', 'polls')}"},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    return response.json()


def outbox_events(stack: Stack, env_name: str, aggregate_id: str) -> list[tuple[str, int | None]]:
    with psycopg.connect(database_url(stack, env_name)) as conn:
        rows = conn.execute(
            "SELECT event_type, envelope FROM servicekit_outbox_event WHERE aggregate_id = %s ORDER BY id",
            [aggregate_id],
        ).fetchall()
    return [(t, envelope.get("version")) for t, envelope in rows]


@pytest.mark.parametrize(
    ("action", "process", "before", "after"),
    [("close", "votes.web", "open", "closed"), ("open", "choices.web", "draft", "open")],
)
def test_state_change_with_its_gate_unreachable_is_a_503_that_changes_nothing(
    stack: Stack, action: str, process: str, before: str, after: str
) -> None:
    platform = owner_platform(stack, 920_010 + len(action))
    poll = open_poll(platform, prefix=f"Gate down {action}") if before == "open" else platform.create_draft()
    token = platform.token(platform.owner_id)
    url = f"{platform.gateway_url}/api/v1/polls/{poll.id}/{action}/"
    state_before = internal_poll(stack, platform, poll.id)
    events_before = outbox_events(stack, "POLLS_DATABASE_URL", poll.id)
    stack.stop_process(process)
    try:
        answers = [platform.session.post(url, json={}, headers={"Authorization": f"Bearer {token}"}) for _ in range(3)]
        for response in answers:
            assert response.status_code == 503, response.text
            assert response.headers["Content-Type"].startswith("application/problem+json")
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["status"] == 503
        assert poll_status(platform, poll.id, token) == before
        assert internal_poll(stack, platform, poll.id) == state_before, "the poll changed although the gate failed"
        assert outbox_events(stack, "POLLS_DATABASE_URL", poll.id) == events_before, "an event left for a failed change"
    finally:
        stack.start_process(process, wait=True, timeout=90)

    def succeeds() -> bool:
        response = platform.session.post(url, json={}, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code in (200, 503), response.text
        return response.status_code == 200

    wait_for(f"{action} after {process} came back", succeeds, timeout=60, interval=0.5)
    assert poll_status(platform, poll.id, token) == after
    state = internal_poll(stack, platform, poll.id)
    assert state["status"] == after and state["version"] == state_before["version"] + 1
    if action == "close":
        vote = platform.session.post(
            f"{platform.gateway_url}/api/v1/votes/",
            json={"poll": poll.id, "choice": poll.choices[0]},
            headers={"Authorization": f"Bearer {platform.token(5_300_001)}"},
            timeout=15,
        )
        assert vote.status_code == 422, vote.text


# --------------------------------------------------------------------------------------------------
# clock skew
# --------------------------------------------------------------------------------------------------


def applied(stack: Stack, env_name: str, event_id: str) -> bool:
    with psycopg.connect(database_url(stack, env_name)) as conn:
        return bool(conn.execute("SELECT 1 FROM servicekit_inbox_event WHERE event_id = %s", [event_id]).fetchone())


def replica(stack: Stack, env_name: str, table: str, poll_id: str) -> tuple[str, int] | None:
    with psycopg.connect(database_url(stack, env_name)) as conn:
        return conn.execute(f"SELECT status, version FROM {table} WHERE id = %s", [poll_id]).fetchone()  # noqa: S608


REPLICAS = [("VOTE_DATABASE_URL", "votes_pollreplica"), ("CHOICE_DATABASE_URL", "choices_pollreplica")]


def skewed(envelope: dict, minutes: int) -> dict:
    """The same event from a producer whose clock is ``minutes`` off (a new delivery: a new event id)."""
    occurred = datetime.now(UTC) + timedelta(minutes=minutes)
    return {**envelope, "id": str(uuid.uuid4()), "occurred_at": occurred.isoformat().replace("+00:00", "Z")}


def deliver(stack: Stack, envelope: dict) -> None:
    publish(stack, [envelope])
    for env_name, _ in REPLICAS:
        wait_for(f"{envelope['type']} applied by {env_name}", lambda e=env_name: applied(stack, e, envelope["id"]))


def test_a_producer_clock_five_minutes_off_changes_no_outcome(stack: Stack) -> None:
    platform = owner_platform(stack, 920_020)
    poll = open_poll(platform, choices=2, prefix="Clock skew")
    token = platform.token(platform.owner_id)
    platform._call("POST", f"/api/v1/polls/{poll.id}/close/", token=token, body={})  # retries a 503
    with psycopg.connect(database_url(stack, "POLLS_DATABASE_URL")) as conn:
        envelopes = dict(
            conn.execute(
                "SELECT event_type, envelope FROM servicekit_outbox_event WHERE aggregate_id = %s ORDER BY id",
                [poll.id],
            ).fetchall()
        )
    opened, closed = envelopes["poll.opened"], envelopes["poll.closed"]
    assert closed["version"] > opened["version"]
    for env_name, table in REPLICAS:
        wait_for(
            f"{table} closed",
            lambda e=env_name, t=table: replica(stack, e, t, poll.id) == ("closed", closed["version"]),
        )

    # 1. A producer 5 minutes AHEAD: the old poll.opened, stamped in the future, arrives after the close.
    deliver(stack, skewed(opened, +5))
    for env_name, table in REPLICAS:
        assert replica(stack, env_name, table, poll.id) == ("closed", closed["version"]), table

    # 2. A producer 5 minutes BEHIND: replicas that hold the open state (stamped now) get the close
    #    stamped 5 minutes ago. (Replicas rebuilt from scratch: the rows are dropped, events replayed.)
    for env_name, table in REPLICAS:
        with psycopg.connect(database_url(stack, env_name)) as conn:
            conn.execute(f"DELETE FROM {table} WHERE id = %s", [poll.id])  # noqa: S608
    deliver(stack, skewed(opened, 0))
    for env_name, table in REPLICAS:
        assert replica(stack, env_name, table, poll.id) == ("open", opened["version"]), table
    deliver(stack, skewed(closed, -5))
    for env_name, table in REPLICAS:
        assert replica(stack, env_name, table, poll.id) == ("closed", closed["version"]), table
    deliver(stack, skewed(opened, +5))  # and the stale open, from the future, once more
    for env_name, table in REPLICAS:
        assert replica(stack, env_name, table, poll.id) == ("closed", closed["version"]), table

    # The outcome: the poll takes no vote.
    vote = platform.session.post(
        f"{platform.gateway_url}/api/v1/votes/",
        json={"poll": poll.id, "choice": poll.choices[0]},
        headers={"Authorization": f"Bearer {platform.token(5_400_001)}"},
        timeout=15,
    )
    assert vote.status_code == 422, vote.text
