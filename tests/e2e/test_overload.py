"""Load shedding under a real overload (issue 11, servicekit.shedding), on a small stack of its own.

The stack runs one web worker per service with tiny shedding settings (a 20 ms wait limit judged
over 200 ms windows), so a burst of 48 closed-loop voters through the gateway is a sustained
overload a test can reach in a few seconds; the session stack keeps the defaults, under which the
rest of the suite never sheds. Proven, through the real gateway:

- some votes are answered ``503`` problem+json (``.../overloaded``) with ``Retry-After`` 1 or 2, quickly
  (the answer does not wait for the queue to drain);
- results reads (priority class) stay ``200`` throughout, and ``/healthz`` carrying a stale gateway
  stamp stays ``200`` (never shed);
- no shed vote was recorded: vote_service's ledger holds exactly the 201s, and a voter who was shed
  votes successfully afterwards (201, not 409);
- ``http_requests_shed_total`` counts the shed votes.

Bounded: at most ``MAX_VOTES`` vote requests within ``LOAD_SECONDS``, all on 127.0.0.1.
"""

from __future__ import annotations

import sys
import threading
import time
import zlib
from collections.abc import Iterator, Mapping

import pytest
import requests

from scripts.loadgen import Platform, stack_harness, wait_for
from scripts.platform_stack import Stack

harness = stack_harness()
NAMESPACE, REPO = harness.NAMESPACE, harness.REPO
stack_environment, test_stack_ports = harness.stack_environment, harness.test_stack_ports

pytestmark = pytest.mark.stack

VOTERS = 48
READERS = 4
MAX_VOTES = 600
LOAD_SECONDS = 12.0
TINY_SHEDDING = {
    "LOAD_SHEDDING": "on",
    "LOAD_SHEDDING_MAX_WAIT_MS": "20",
    "LOAD_SHEDDING_MIN_WAIT_MS": "5",
    "LOAD_SHEDDING_TARGET_MS": "60",
    "LOAD_SHEDDING_WINDOW_MS": "200",
    "LOAD_SHEDDING_MIN_SAMPLES": "5",
    # results reads are shed only beyond 100 x 20 ms (the queue before shedding starts is ~1 s here)
    "LOAD_SHEDDING_PRIORITY_MULTIPLE": "100",
}


@pytest.fixture(scope="module")
def small_stack() -> Iterator[Stack]:
    """A stack beside the session's: own ports (+40), databases, vhost, Redis DB and run folder."""
    name = f"{NAMESPACE or 'default'}-overload"
    suffix = "_" + name.replace("-", "_")
    run_dir = REPO / ".run" / f"test-stack-{name}"
    env = stack_environment(run_dir)
    env.update(
        POLLS_DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/polls_stack{suffix}",
        CHOICE_DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/choices_stack{suffix}",
        VOTE_DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/votes_stack{suffix}",
        REDIS_URL=f"redis://127.0.0.1:6379/{10 + zlib.crc32(name.encode()) % 6}",
        BROKER_URL=f"amqp://guest:guest@127.0.0.1:5672/polls_test{suffix}",
        EVENTS_NAMESPACE=f"overload{suffix}",
        OTEL_SDK_DISABLED="true",
        OTEL_EXPORTER_OTLP_ENDPOINT=None,
        LOG_LEVEL="WARNING",
        **TINY_SHEDDING,
    )
    ports = test_stack_ports(base=18040)
    env["GATEWAY_TLS_PORT"] = str(ports["gateway"] + 363)
    Stack(run_dir, env=env, ports=ports, log=lambda m: None).stop()
    stack = Stack(
        run_dir,
        env=env,
        ports=ports,
        fresh_databases=True,
        web_workers=1,
        worker_concurrency=1,
        log=lambda message: print(f"overload stack: {message}", file=sys.stderr),
    )
    try:
        stack.start()
        yield stack
    finally:
        leftovers = stack.stop()
        assert not leftovers, f"processes left behind after stop: {leftovers}"


class Burst:
    """Closed-loop voters (a fresh user per request) and results readers through the gateway."""

    def __init__(self, platform: Platform, poll_id: str, choice_id: str):
        self.platform, self.poll_id, self.choice_id = platform, poll_id, choice_id
        # user, status, seconds, headers (case-insensitive: granian sends lower-case names), body
        self.votes: list[tuple[int, int, float, Mapping[str, str], str]] = []
        self.reads: list[int] = []
        self.lock = threading.Lock()
        self.next_user = 2_000
        self.stop_at = time.monotonic() + LOAD_SECONDS
        self.stop = threading.Event()

    def _user(self) -> int | None:
        with self.lock:
            if self.next_user - 2_000 >= MAX_VOTES:
                return None
            self.next_user += 1
            return self.next_user

    def voter(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set() and time.monotonic() < self.stop_at:
                user = self._user()
                if user is None:
                    return
                token = self.platform.token(user)
                started = time.monotonic()
                response = session.post(
                    f"{self.platform.gateway_url}/api/v1/votes/",
                    json={"poll": self.poll_id, "choice": self.choice_id},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
                with self.lock:
                    self.votes.append(
                        (user, response.status_code, time.monotonic() - started, response.headers, response.text)
                    )

    def reader(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set() and time.monotonic() < self.stop_at:
                response = session.get(f"{self.platform.gateway_url}/api/v1/results/{self.poll_id}/", timeout=30)
                with self.lock:
                    self.reads.append(response.status_code)
                time.sleep(0.05)

    def shed(self) -> list[tuple[int, int, float, Mapping[str, str], str]]:
        with self.lock:
            return [vote for vote in self.votes if vote[1] == 503]


def shed_total(votes_url: str) -> float:
    """vote_service's ``http_requests_shed_total`` of the default class (labels in any order)."""
    text = requests.get(f"{votes_url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("http_requests_shed_total{") and 'class="default"' in line and 'service="votes"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_overload_sheds_votes_fast_and_keeps_reads_and_health(small_stack: Stack) -> None:
    votes_url = small_stack.service_url("votes")
    platform = Platform(gateway_url=small_stack.gateway_url, run_dir=small_stack.run_dir, votes_url=votes_url)
    (poll,) = platform.create_polls(1, choices=2, prefix="Overload")
    platform.wait_warm([poll])

    burst = Burst(platform, poll.id, poll.choices[0])
    threads = [threading.Thread(target=burst.voter) for _ in range(VOTERS)]
    threads += [threading.Thread(target=burst.reader) for _ in range(READERS)]
    for thread in threads:
        thread.start()
    health: list[int] = []
    try:
        wait_for("votes shed under the burst", lambda: len(burst.shed()) >= 10, timeout=LOAD_SECONDS)
        # while shedding: vote_service's /healthz with a stamp far beyond the limit is still served
        stale = {"X-Request-Start": f"t={time.time() - 5:.3f}"}
        health = [requests.get(f"{votes_url}/healthz", headers=stale, timeout=10).status_code for _ in range(5)]
    finally:
        burst.stop.set()
        for thread in threads:
            thread.join(timeout=60)

    statuses = [vote[1] for vote in burst.votes]
    assert set(statuses) <= {201, 503}, f"only accepted or shed: {sorted(set(statuses))}"
    shed = burst.shed()
    assert shed, "the burst was not shed"
    for _user, _status, _seconds, headers, body in shed:
        assert headers["Content-Type"].startswith("application/problem+json")
        assert headers["Retry-After"] in ("1", "2")  # drawn at random: shed clients come back spread out
        assert '"type":"https://polls.example/problems/overloaded"' in body.replace(" ", "")
    quick = sorted(seconds for _u, _s, seconds, _h, _b in shed)
    assert quick[len(quick) // 2] < 0.5, f"shed answers should come fast; median {quick[len(quick) // 2]:.3f} s"
    assert health == [200] * 5
    assert burst.reads and set(burst.reads) == {200}, f"results reads: {sorted(set(burst.reads))}"

    # None of the shed votes was recorded: the ledger is exactly the 201s, and a shed voter votes now.
    accepted = statuses.count(201)
    assert accepted > 0
    wait_for("vote_service ledger equals the 201s", lambda: len(platform.ledger(poll.id)) == accepted, timeout=10)
    for user, *_ in shed[:3]:
        retry = requests.post(
            f"{platform.gateway_url}/api/v1/votes/",
            json={"poll": poll.id, "choice": poll.choices[1]},
            headers={"Authorization": f"Bearer {platform.token(user)}"},
            timeout=15,
        )
        assert retry.status_code == 201, retry.text
    assert shed_total(votes_url) >= len(shed)
