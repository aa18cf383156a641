"""Releases on the native stack (issue 12, ``scripts/release.py``), during a vote load through the gateway:

- a good release of vote_service shifts the traffic 10 % -> 50 % -> 100 % to a new instance (each step
  seen on the new instance's own metrics), restarts the old one and hands the traffic back: no request
  fails, every acknowledged vote is in the ledger;
- a bad release (an instance whose API answers 500) is rolled back automatically at its first step:
  only requests sent before the rollback finished can fail, none after; no acknowledged vote is lost
  and no refused one is recorded.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests

from scripts.loadgen import Op, Platform, Poll, answer_status, timed, wait_for
from scripts.platform_stack import Stack, port_open
from scripts.release import CANARY_PORT_OFFSET, Release, ReleaseFailed

pytestmark = pytest.mark.stack

LOAD_THREADS = 4
AFTER_ROLLBACK = 40  # answered votes sent after the rollback (each must succeed): ten per load thread


class VoteLoad:
    """Fresh users casting one vote each (v2, keep-alive connections), round-robin over ``polls``, until
    the block ends.

    A gateway reload closes the idle keep-alive connections of its old workers; a request sent on one
    at that instant never reaches Nginx (a connection error, no answer). Like a browser resending on a
    reused connection, the client sends it again, with the same ``Idempotency-Key``, so a vote that was
    in fact executed is answered, never cast twice. ``retries`` counts them.
    """

    def __init__(self, platform: Platform, polls: list[Poll], first_user: int):
        self.platform, self.polls = platform, polls
        self.ops: list[Op] = []
        self.retries = 0
        self._next_user = first_user
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._voter, daemon=True) for _ in range(LOAD_THREADS)]

    def _cast(self, session: requests.Session, user: int, poll: Poll) -> Op:
        choice = poll.choices[user % len(poll.choices)]
        headers = {"Authorization": f"Bearer {self.platform.token(user)}", "Idempotency-Key": uuid.uuid4().hex}
        url, body = f"{self.platform.gateway_url}/api/v2/votes/", {"poll": poll.id, "choice": choice}
        for attempt in range(3):
            sent, answered, response, error = timed(session, "POST", url, json=body, headers=headers)
            if response is not None or attempt == 2:
                break
            with self._lock:
                self.retries += 1
        op = Op("cast", user, poll.id, sent, answered, answer_status(response, error), choice=choice)
        if op.status == 201:
            op.vote = response.json()["id"]
        return op

    def _voter(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            with self._lock:
                user = self._next_user
                self._next_user += 1
            op = self._cast(session, user, self.polls[user % len(self.polls)])
            with self._lock:
                self.ops.append(op)

    def wait_answered(self, count: int, *, sent_after: float, timeout: float = 30.0) -> None:
        """Until ``count`` votes sent after ``sent_after`` (``time.monotonic()``) have their answer."""

        def answered() -> bool:
            with self._lock:
                return sum(1 for op in self.ops if op.sent > sent_after) >= count

        wait_for(f"{count} votes sent after {sent_after:.1f} answered", answered, timeout=timeout)

    def __enter__(self) -> VoteLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def platform_of(stack: Stack, owner_id: int) -> tuple[Platform, list[Poll]]:
    platform = Platform(
        gateway_url=stack.gateway_url, run_dir=stack.run_dir, owner_id=owner_id, votes_url=stack.service_url("votes")
    )
    polls = platform.create_polls(3, choices=3, prefix="Release")
    platform.wait_warm(polls)
    return platform, polls


def accepted_votes(ops: list[Op]) -> set[str]:
    return {op.vote for op in ops if op.status == 201}


def ledger_ids(platform: Platform, polls: list[Poll]) -> set[str]:
    return {vote for poll in polls for vote in platform.ledger(poll.id)}


def assert_back_to_one_instance(stack: Stack) -> None:
    conf = (stack.run_dir / "nginx" / "nginx.conf").read_text()
    assert f"127.0.0.1:{stack.ports['votes'] + CANARY_PORT_OFFSET}" not in conf
    assert not port_open(stack.ports["votes"] + CANARY_PORT_OFFSET), "the new instance is still running"


def test_a_good_release_completes_with_no_failed_request(stack: Stack) -> None:
    platform, polls = platform_of(stack, 930_001)
    release = Release(stack, "votes", "good", steps=[10, 50, 100], hold=2.0, max_error_ratio=0.01)
    with VoteLoad(platform, polls, first_user=7_000_000) as load:
        load.wait_answered(LOAD_THREADS, sent_after=time.monotonic())  # the load is flowing before the first step
        release.run()
        load.wait_answered(LOAD_THREADS, sent_after=time.monotonic())  # and goes on once the release is done
    print("\n" + "\n".join(f"  {r.percent} %: {r.requests} requests, {r.errors} 5xx" for r in release.results))
    print(f"  {len(load.ops)} votes, {load.retries} resent after a closed keep-alive connection")
    statuses = sorted({str(op.status) for op in load.ops})
    assert statuses == ["201"], f"requests failed during a good release: {statuses}"
    assert [r.percent for r in release.results] == [10, 50, 100]
    assert all(r.requests > 0 and r.errors == 0 for r in release.results), release.results
    assert accepted_votes(load.ops) == ledger_ids(platform, polls)
    assert_back_to_one_instance(stack)


def test_a_bad_release_is_rolled_back_and_loses_no_vote(stack: Stack) -> None:
    platform, polls = platform_of(stack, 930_002)
    bad_build = "tests.ops.bad_release:application"
    release = Release(stack, "votes", "bad", steps=[10, 50, 100], hold=2.0, max_error_ratio=0.01, target=bad_build)
    with VoteLoad(platform, polls, first_user=7_100_000) as load:
        load.wait_answered(LOAD_THREADS, sent_after=time.monotonic())  # the load is flowing before the first step
        with pytest.raises(ReleaseFailed):
            release.run()
        rolled_back = time.monotonic()
        load.wait_answered(AFTER_ROLLBACK, sent_after=rolled_back)  # the load goes on after the rollback
    print("\n" + "\n".join(f"  {r.percent} %: {r.requests} requests, {r.errors} 5xx" for r in release.results))
    (first,) = release.results  # stopped at its first step
    assert first.percent == 10 and first.errors > 0
    failed = [op for op in load.ops if op.status != 201]
    assert failed, "the bad instance took no request: the test proves nothing"
    assert {op.status for op in failed} == {500}, {op.status for op in failed}
    after = [op for op in load.ops if op.sent > rolled_back]
    assert after and all(op.status == 201 for op in after), "requests failed after the rollback"
    # Nothing the bad instance refused was written; everything acknowledged is there.
    assert accepted_votes(load.ops) == ledger_ids(platform, polls)
    assert_back_to_one_instance(stack)
