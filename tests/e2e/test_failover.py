"""Failover (issue 11, "Replicas and failover"): two web instances of every service behind the gateway;
during a vote load one instance of each service is SIGKILLed, then started again.

Proved on a stack of its own (two replicas per service, ports 18041-18063 plus the offset):

- before the kill the gateway balances every service over both instances (least_conn);
- the only requests that fail are votes in flight on a killed instance (the gateway log says where
  each went); reads in flight are resent by the gateway to the survivor and succeed;
- a failed vote is either committed or not, never twice: the ledger holds every acknowledged vote
  plus at most one per failed request, each such user has at most one vote (their own list, read
  back), and results and choice tallies count the ledger exactly;
- every request sent after the kill succeeds, promptly, on the survivor;
- the killed instance comes back (``Stack.revive``, what the foreground ``make up`` does by itself)
  and takes requests again once its passive health-check pause (``fail_timeout``) is over.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from scripts.loadgen import Platform, Poll, answer_status, projection, stack_harness, timed, wait_for
from scripts.platform_stack import REPO, SERVICES, Stack, prepare

harness = stack_harness()
NAMESPACE, PORT_OFFSET, stack_environment = harness.NAMESPACE, harness.PORT_OFFSET, harness.stack_environment

SUFFIX = f"_{NAMESPACE}" if NAMESPACE else ""
VOTE_THREADS = 4
READ_THREADS = 2
WARM_UP = 3.0  # seconds of load on both instances before the kill
ON_SURVIVOR = 3.0  # seconds of load on the survivors alone before the killed instances are started again
PROMPT = 5.0  # seconds: an answer after the kill never waits for a timeout (proxy_next_upstream_timeout)
KILLED = {s.name: f"{s.name}.web.2" for s in SERVICES}  # the instance of each service that is killed


def failover_ports() -> dict[str, int]:
    """Ports 18041-18043 (instance 2 at +20: 18061-18063), gateway 18047: clear of every other test stack."""
    base = 18040 + PORT_OFFSET
    return {"polls": base + 1, "choices": base + 2, "votes": base + 3, "gateway": base + 7}


@pytest.fixture(scope="module")
def replica_stack() -> Iterator[Stack]:
    run_dir = REPO / ".run" / f"test-failover{SUFFIX.replace('_', '-')}"
    redis_db = 6 if not NAMESPACE else 1 + zlib.crc32(NAMESPACE.encode()) % 6
    session = stack_environment(run_dir)
    env = {
        **session,
        "POLLS_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/polls_failover{SUFFIX}",
        "CHOICE_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/choices_failover{SUFFIX}",
        "VOTE_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/votes_failover{SUFFIX}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        # The session's broker, another vhost: no event of this stack reaches another.
        "BROKER_URL": session["BROKER_URL"].rsplit("/", 1)[0] + f"/polls_failover{SUFFIX}",
        "GATEWAY_TLS_PORT": str(failover_ports()["gateway"] + 1),
        "OTEL_EXPORTER_OTLP_ENDPOINT": None,
        "LOG_LEVEL": "WARNING",
        "SERVICE_REPLICAS": "2",
        # Failover, not overload: on two shared cores a survivor carrying all the load would shed some votes
        # with 503 + Retry-After (servicekit.shedding, proved in tests/e2e/test_overload.py), and the edge
        # buckets would refuse a single client address; both would hide what this test looks at.
        "LOAD_SHEDDING": "false",
        "GATEWAY_EDGE_LIMITS": "off",
    }
    Stack(run_dir, env=env, ports=failover_ports(), log=lambda m: None).stop()  # a previous run killed hard
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    prepare.ensure_rabbitmq_vhost(env, fresh=True)  # no queue or message of an earlier run
    stack = Stack(
        run_dir,
        env=env,
        ports=failover_ports(),
        fresh_databases=False,  # new polls every run; migrating from scratch would double the run time
        web_workers=1,
        worker_concurrency=1,
        log=lambda message: print(f"failover stack: {message}", file=sys.stderr),
    )
    stack.start()
    try:
        yield stack
    finally:
        leftovers = stack.stop()
        assert not leftovers, f"processes left behind: {leftovers}"


# --------------------------------------------------------------------------------------------------
# the load and what the gateway says about it
# --------------------------------------------------------------------------------------------------


@dataclass
class Request:
    service: str  # the service the path belongs to
    kind: str  # cast | read
    request_id: str
    sent: float
    answered: float
    status: int | str
    user: int | None = None
    poll: str | None = None
    vote: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (200, 201)


class Load:
    """Voters (fresh users, one vote each, v2 with an Idempotency-Key) and readers (a poll from
    polls_service, its choices from choice_service) through the gateway, until stopped."""

    def __init__(self, platform: Platform, polls: list[Poll]):
        self.platform, self.polls = platform, polls
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._users = iter(range(8_000_000, 9_000_000))
        self._threads = [threading.Thread(target=self._voter, daemon=True) for _ in range(VOTE_THREADS)]
        self._threads += [threading.Thread(target=self._reader, daemon=True) for _ in range(READ_THREADS)]

    def _send(self, session: requests.Session, service: str, kind: str, method: str, path: str, **kwargs) -> Request:
        request_id = f"failover-{uuid.uuid4().hex}"
        headers = {"X-Request-ID": request_id, "Accept": "application/json", **kwargs.pop("headers", {})}
        url = self.platform.gateway_url + path
        sent, answered, response, error = timed(session, method, url, headers=headers, timeout=30, **kwargs)
        request = Request(service, kind, request_id, sent, answered, answer_status(response, error))
        if response is not None and response.status_code == 201:
            request.vote = response.json()["id"]
        with self._lock:
            self.requests.append(request)
        return request

    def _voter(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            with self._lock:
                user = next(self._users)
            poll = self.polls[user % len(self.polls)]
            headers = {"Authorization": f"Bearer {self.platform.token(user)}", "Idempotency-Key": uuid.uuid4().hex}
            body = {"poll": poll.id, "choice": poll.choices[user % len(poll.choices)]}
            request = self._send(session, "votes", "cast", "POST", "/api/v2/votes/", json=body, headers=headers)
            request.user, request.poll = user, poll.id

    def _reader(self) -> None:
        session = requests.Session()
        # Signed in, so the gateway's micro-cache of public reads never answers in the services' place.
        headers = {"Authorization": f"Bearer {self.platform.token(940_002)}"}
        for n in range(10**9):
            if self._stop.is_set():
                return
            poll = self.polls[n % len(self.polls)]
            if n % 2:
                self._send(session, "polls", "read", "GET", f"/api/v1/polls/{poll.id}/", headers=headers)
            else:
                self._send(session, "choices", "read", "GET", f"/api/v1/choices/?poll={poll.id}", headers=headers)

    def since(self, moment: float) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.sent > moment]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def gateway_log(stack: Stack) -> dict[str, dict]:
    """The gateway's access-log entries of this test's requests, by request id."""
    entries = {}
    for line in (stack.logs_dir / "gateway.log").read_text(errors="replace").splitlines():
        if line.startswith("{") and "failover-" in line:
            entry = json.loads(line)
            entries[entry["http"]["request"]["id"]] = entry
    return entries


def complete_log(stack: Stack, requests_: list[Request]) -> dict[str, dict] | None:
    """The gateway log once it has a line for each of ``requests_`` (None until then)."""
    entries = gateway_log(stack)
    return entries if all(r.request_id in entries for r in requests_) else None


def upstreams(entry: dict) -> list[tuple[str, str]]:
    """``[(address, status), ...]`` the gateway tried for one request, in order (a resend adds one)."""
    upstream = entry["gateway"]["upstream"]
    addresses = [a.strip() for a in upstream["address"].split(",") if a.strip()]
    statuses = [s.strip() for s in upstream["status"].split(",")][: len(addresses)]
    return list(zip(addresses, statuses + [""] * (len(addresses) - len(statuses)), strict=True))


def address(stack: Stack, process: str) -> str:
    service = process.split(".")[0]
    return f"127.0.0.1:{stack.web_instances(service)[process]}"


def answered_by(stack: Stack, requests_: list[Request]) -> dict[str, set[str]]:
    """Per service, the web instances (process names) that answered any of ``requests_`` (gateway log)."""
    log = gateway_log(stack)
    by_address = {address(stack, p): p for s in SERVICES for p in stack.web_instances(s.name)}
    seen: dict[str, set[str]] = {s.name: set() for s in SERVICES}
    for request in requests_:
        entry = log.get(request.request_id)
        if entry and upstreams(entry):
            last, status = upstreams(entry)[-1]
            if status.startswith("2") and last in by_address:
                seen[request.service].add(by_address[last])
    return seen


def votes_of(platform: Platform, user: int) -> list[dict]:
    response = requests.get(
        f"{platform.gateway_url}/api/v2/votes/",
        headers={"Authorization": f"Bearer {platform.token(user)}", "Accept": "application/json"},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    return response.json()["results"]


# --------------------------------------------------------------------------------------------------
# the test
# --------------------------------------------------------------------------------------------------


def test_a_killed_instance_fails_only_its_requests_in_flight_and_comes_back(replica_stack: Stack) -> None:
    stack = replica_stack
    assert all(len(stack.web_instances(s.name)) == 2 for s in SERVICES)
    platform = Platform(
        gateway_url=stack.gateway_url, run_dir=stack.run_dir, owner_id=940_001, votes_url=stack.service_url("votes")
    )
    polls = platform.create_polls(3, choices=3, prefix="Failover")
    platform.wait_warm(polls)

    with Load(platform, polls) as load:
        started = time.monotonic()
        time.sleep(WARM_UP)  # the load runs on both instances of each service
        kill_started = time.monotonic()
        for process in KILLED.values():
            stack.kill(process)  # SIGKILL to its process group; returns once it is gone
        killed = time.monotonic()
        time.sleep(ON_SURVIVOR)
        revived_at = time.monotonic()
        assert sorted(stack.revive(KILLED.values())) == sorted(KILLED.values())
        stack.wait_healthy(120, names=list(KILLED.values()))
        healthy = time.monotonic()

        # Back in the upstream once its passive health-check pause (fail_timeout 5 s) is over.
        def back_in_service() -> bool:
            seen = answered_by(stack, load.since(healthy))
            return all(KILLED[service] in seen[service] for service in KILLED)

        wait_for("every revived instance answers requests through the gateway", back_in_service, timeout=30)
        ended = time.monotonic()
    # nginx writes a request's access-log line once its answer is out: wait until every one is there.
    log = wait_for("a gateway log line for every request", lambda: complete_log(stack, load.requests), timeout=10)
    before = [r for r in load.requests if r.answered < kill_started]
    after = [r for r in load.requests if r.sent > killed]
    failed = [r for r in load.requests if not r.ok]
    print(
        f"\n  {len(load.requests)} requests in {ended - started:.1f} s ({len(before)} before the kill, "
        f"{len(after)} after it); {len(failed)} failed; revived {healthy - revived_at:.1f} s after revive(), "
        f"taking traffic {ended - healthy:.1f} s after healthy"
    )

    # Balanced: before the kill both instances of every service answered.
    seen_before = answered_by(stack, before)
    for service, instances in seen_before.items():
        assert instances == set(stack.web_instances(service)), f"{service}: only {instances} answered before the kill"

    # Only votes in flight on a killed instance failed: sent before the kill ended, sent there by the gateway.
    for request in failed:
        entry = log.get(request.request_id)
        assert entry is not None, f"{request}: no gateway log line"
        tried = [a for a, _ in upstreams(entry)]
        assert request.kind == "cast", f"a read failed: {request} {tried}"
        assert request.sent < killed, f"failed although sent after the kill: {request} {tried}"
        assert address(stack, KILLED[request.service]) in tried, f"failed on a live instance: {request} {tried}"
        assert request.status == "gateway:503", request  # the gateway's problem+json: the instance did not answer
    assert len(failed) <= VOTE_THREADS, f"more failures than requests in flight: {failed}"

    # After the kill: every request succeeded, promptly (the survivor at once, never a timeout).
    assert after and all(r.ok for r in after), [r for r in after if not r.ok]
    slowest = max(r.answered - r.sent for r in after)
    assert slowest < PROMPT, f"a request after the kill waited {slowest:.1f} s"

    # Each vote committed or not, never twice.
    casts = [r for r in load.requests if r.kind == "cast"]
    acknowledged = {r.vote for r in casts if r.status == 201}
    ledger = {vote: choice for poll in polls for vote, choice in platform.ledger(poll.id).items()}
    assert acknowledged <= set(ledger), "an acknowledged vote is missing"
    unknown = [r for r in casts if r.status != 201]
    assert len(set(ledger) - acknowledged) <= len(unknown), "votes nobody was told about"
    for request in unknown:
        # The databases outlive a run (no migration from scratch): only this run's poll counts.
        mine = [v for v in votes_of(platform, request.user) if v["poll"] == request.poll]
        assert len(mine) <= 1, f"user {request.user} voted twice: {mine}"
    assert len(acknowledged) == len([r for r in casts if r.status == 201]), "one vote acknowledged twice"

    # Results and tallies count exactly the ledger (the events were neither lost nor doubled).
    for poll in polls:
        counted = sum(1 for choice in ledger.values() if choice in poll.choices)
        wait_for(
            f"results of {poll.id} count its {counted} votes",
            lambda poll=poll, counted=counted: (platform.results(poll.id) or {}).get("total") == counted,
            timeout=30,
        )
    wait_for(
        "choice_service's projection equals vote_service's ledger",
        lambda: projection(stack, [p.id for p in polls]) == ledger,
        timeout=30,
    )


def test_the_stack_records_its_replicas(replica_stack: Stack) -> None:
    state = replica_stack.read_state()
    assert state["replicas"] == {"polls": 2, "choices": 2, "votes": 2}
    names = set(state["processes"])
    for service in SERVICES:
        assert {f"{service.name}.web", f"{service.name}.web.2", f"{service.name}.worker"} <= names
    assert not any(name.endswith((".worker.2", ".beat.2")) for name in names)  # Celery stays one per service
    conf = (replica_stack.run_dir / "nginx" / "nginx.conf").read_text()
    for service in SERVICES:
        for port in replica_stack.web_ports(service.name):
            assert f"server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;" in conf
