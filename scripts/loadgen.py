"""Load helpers shared by ``make bench`` (scripts/bench.sh) and the fault tests (tests/chaos).

Everything goes through the gateway like a client would; only the access tokens are minted here
with the stack's own signing key (``RUN_DIR/secrets/jwt_private.pem``), so thousands of *distinct*
users can vote without registering thousands of accounts (password hashing would dominate the run)::

    from scripts.loadgen import Platform
    platform = Platform(gateway_url="http://127.0.0.1:8080", run_dir=Path(".run"))
    polls = platform.create_polls(20, choices=3)          # opened, with their choice ids
    platform.wait_warm(polls)                             # vote_service has heard of every poll and choice
    token = platform.token(100_001)                       # a user the platform has never seen

The gate proofs of issue 9 (tests/e2e/test_gates.py, tests/chaos) use ``Op`` records (what a client
sent, when, and what it was told), ``CloseRace`` (voters keep voting while the owner closes) and
``Platform.ledger`` (vote_service's internal ledger read, per vote id).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent


def stack_harness():  # noqa: ANN201 -- tests/conftest.py, whose types live there
    """tests/conftest.py loaded as a module of its own, for tests that start stacks of their own.

    ``from tests.conftest import ...`` can resolve to servicekit's ``tests`` package (this module puts
    servicekit/ on sys.path), so the file is loaded by location."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("stack_harness", REPO / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if str(REPO / "servicekit") not in sys.path:
    sys.path.insert(0, str(REPO / "servicekit"))


@dataclass
class Poll:
    id: str
    choices: list[str] = field(default_factory=list)


class Platform:
    """A running platform reached through its gateway."""

    def __init__(
        self,
        *,
        gateway_url: str,
        run_dir: Path,
        owner_id: int = 1,
        token_lifetime: int = 4 * 3600,
        votes_url: str | None = None,
    ):
        from servicekit import jwks

        self.gateway_url = gateway_url.rstrip("/")
        # vote_service's own address (not the gateway's): the ``/internal/`` ledger read.
        self.votes_url = votes_url.rstrip("/") if votes_url else None
        self.run_dir = Path(run_dir)
        self.key = jwks.load_private_key((self.run_dir / "secrets" / "jwt_private.pem").read_text())
        self.token_lifetime = token_lifetime
        self.owner_id = owner_id
        self.session = requests.Session()

    def token(self, user_id: int, roles: tuple[str, ...] = ("user",)) -> str:
        """An access token for user ``user_id`` signed with the platform's key."""
        from servicekit.testing import make_access_token

        now = int(time.time())
        return make_access_token(user_id, f"load{user_id}", roles, private_key=self.key, exp=now + self.token_lifetime)

    def service_token(self, caller: str, audience: str, *, lifetime: int = 60) -> str:
        """A token of the service ``caller`` for a call to ``audience``, signed with ``caller``'s own key."""
        from servicekit import jwks
        from servicekit.service_tokens import mint

        key = jwks.load_private_key((self.run_dir / "secrets" / "service_keys" / f"{caller}.pem").read_text())
        return mint(caller=caller, audience=audience, private_key=key, lifetime=lifetime)

    def _call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: dict | None = None,
        expect: tuple[int, ...] = (200, 201),
    ) -> dict:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in range(20):
            response = self.session.request(method, self.gateway_url + path, json=body, headers=headers, timeout=15)
            # Setup runs right after start-up: a replica may still be on its way (503 + Retry-After).
            if response.status_code in (502, 503, 504) and attempt < 19:
                time.sleep(0.5)
                continue
            break
        if response.status_code not in expect:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else {}

    def create_polls(self, count: int, *, choices: int = 3, prefix: str = "Load poll") -> list[Poll]:
        """``count`` open polls of the owner, each with ``choices`` choices."""
        owner = self.token(self.owner_id)
        polls = []
        for i in range(count):
            poll = self._call("POST", "/api/v1/polls/", token=owner, body={"question": f"{prefix} {i} {time.time()}"})
            ids = []
            for c in range(choices):
                choice = self._call(
                    "POST",
                    "/api/v1/choices/",
                    token=owner,
                    body={"poll": poll["id"], "text": f"Option {c}", "position": c},
                )
                ids.append(choice["id"])
            self._call("POST", f"/api/v1/polls/{poll['id']}/open/", token=owner, body={})
            polls.append(Poll(poll["id"], ids))
        return polls

    def close_polls(self, polls: list[Poll]) -> None:
        """Close the owner's ``polls`` (their results are final from the close's 200 on)."""
        owner = self.token(self.owner_id)
        for poll in polls:
            self._call("POST", f"/api/v1/polls/{poll.id}/close/", token=owner, body={})

    def create_draft(self, *, choices: int = 2, prefix: str = "Draft", owner: str | None = None) -> Poll:
        """A draft poll of the owner with ``choices`` choices (not opened)."""
        owner = owner or self.token(self.owner_id)
        poll = self._call("POST", "/api/v1/polls/", token=owner, body={"question": f"{prefix} {time.time()}"})
        ids = [
            self._call(
                "POST", "/api/v1/choices/", token=owner, body={"poll": poll["id"], "text": f"Base {c}", "position": c}
            )["id"]
            for c in range(choices)
        ]
        return Poll(poll["id"], ids)

    def ledger(self, poll_id: str) -> dict[str, str]:
        """vote_service's ledger of a poll, ``{vote id: choice id}``, read page by page from
        ``GET /internal/polls/{id}/votes/`` on vote_service itself, as choice_service (its reconciler) would."""
        if not self.votes_url:
            raise RuntimeError("Platform(votes_url=...) is needed for the internal ledger read")
        headers = {"Authorization": f"Service {self.service_token('choices', 'votes')}", "Accept": "application/json"}
        votes: dict[str, str] = {}
        after: str | None = None
        while True:
            params = {"limit": 1000, **({"after": after} if after else {})}
            response = self.session.get(
                f"{self.votes_url}/internal/polls/{poll_id}/votes/", params=params, headers=headers, timeout=30
            )
            if response.status_code != 200:
                raise RuntimeError(f"ledger of {poll_id} -> {response.status_code}: {response.text[:300]}")
            body = response.json()
            for vote in body["votes"]:
                votes[vote["id"]] = vote["choice_id"]
            after = body.get("next")
            if not after:
                return votes

    def results(self, poll_id: str) -> dict | None:
        response = self.session.get(f"{self.gateway_url}/api/v1/results/{poll_id}/", timeout=15)
        return response.json() if response.status_code == 200 else None

    def wait_warm(self, polls: list[Poll], timeout: float = 60.0) -> None:
        """Until vote_service's results list every choice of every poll (its replicas are warm)."""
        deadline = time.monotonic() + timeout
        pending = list(polls)
        while pending and time.monotonic() < deadline:
            poll = pending[0]
            body = self.results(poll.id)
            if body and {c["choice"] for c in body.get("choices", [])} >= set(poll.choices):
                pending.pop(0)
                continue
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"{len(pending)} poll(s) not known to vote_service after {timeout} s")


# --------------------------------------------------------------------------------------------------
# what clients were told, and when (the gate proofs)
# --------------------------------------------------------------------------------------------------

SUCCESS = {"cast": 201, "change": 200, "retract": 204, "close": 200, "open": 200}
# No answer from the service: the operation may or may not have happened (502/504 from the gateway).
UNKNOWN_STATUSES = {502, 504}


@dataclass
class Op:
    """One client request: ``sent`` (monotonic, taken before sending) and ``answered`` (after the
    answer was read), the status (an int, or ``"error:<Exception>"`` when no answer came)."""

    kind: str  # cast | change | retract | close | open | choice.create | choice.update | choice.delete
    user: int
    poll: str
    sent: float
    answered: float
    status: int | str
    vote: str | None = None  # the vote the operation is about (its id, once known)
    choice: str | None = None  # the choice voted for / moved to / edited
    detail: str | None = None  # e.g. the text a choice write sent

    @property
    def ok(self) -> bool:
        return isinstance(self.status, int) and 200 <= self.status < 300

    @property
    def unknown(self) -> bool:
        """No answer: the operation may have happened or not."""
        return isinstance(self.status, str) or self.status in UNKNOWN_STATUSES

    @property
    def vote_gone(self) -> bool:
        """A change or retraction answered 404: the vote does not exist (any more).

        The gateway resends an idempotent request (a DELETE) to another instance when the first one died
        with it in flight (``proxy_next_upstream``); if the first had committed the retraction, the resent
        one finds no vote. The client is told 404, and the vote is indeed gone."""
        return self.kind in ("change", "retract") and self.status == 404


def answer_status(response: requests.Response | None, error: str = "") -> int | str:
    """The status of an answer as the gate proofs count it: the service's HTTP status, ``"error:<Exc>"``
    when no answer came, or ``"gateway:<status>"`` when the gateway answered for an upstream that did
    not (a connection refused or reset mid-request: whether the operation happened is unknown)."""
    if response is None:
        return error or "error"
    if response.status_code in (502, 503, 504) and "upstream-unavailable" in response.text[:200]:
        return f"gateway:{response.status_code}"
    return response.status_code


def timed(
    session: requests.Session, method: str, url: str, **kwargs
) -> tuple[float, float, requests.Response | None, str]:  # noqa: ANN003
    """``(sent, answered, response or None, error)`` of one request."""
    kwargs.setdefault("timeout", 30)
    sent = time.monotonic()
    try:
        response = session.request(method, url, **kwargs)
        return sent, time.monotonic(), response, ""
    except requests.RequestException as exc:
        return sent, time.monotonic(), None, f"error:{type(exc).__name__}"


class VoteClient:
    """Cast, change and retract through the gateway for one user, recording an ``Op`` for each."""

    def __init__(self, platform: Platform, session: requests.Session, user: int, token: str | None = None):
        self.platform = platform
        self.session = session
        self.user = user
        self.headers = {"Authorization": f"Bearer {token or platform.token(user)}"}
        self.vote: str | None = None  # the live vote of this user (as far as the answers tell)
        self.choice: str | None = None

    def _op(self, kind: str, method: str, path: str, poll: str, choice: str | None, body: dict | None) -> Op:
        sent, answered, response, error = timed(
            self.session, method, self.platform.gateway_url + path, json=body, headers=self.headers
        )
        op = Op(kind, self.user, poll, sent, answered, answer_status(response, error), vote=self.vote, choice=choice)
        if response is not None and response.status_code == SUCCESS[kind]:
            if kind == "cast":
                op.vote = self.vote = response.json()["id"]
                self.choice = choice
            elif kind == "change":
                self.choice = choice
            else:
                self.vote = self.choice = None
        elif op.vote_gone:
            self.vote = self.choice = None
        return op

    def cast(self, poll: str, choice: str) -> Op:
        return self._op("cast", "POST", "/api/v1/votes/", poll, choice, {"poll": poll, "choice": choice})

    def change(self, poll: str, choice: str) -> Op:
        return self._op("change", "PATCH", f"/api/v2/votes/{self.vote}/", poll, choice, {"choice": choice})

    def retract(self, poll: str) -> Op:
        return self._op("retract", "DELETE", f"/api/v2/votes/{self.vote}/", poll, None, None)


def expected_ledger(ops: list[Op]) -> tuple[dict[str, str], set[int]]:
    """What vote_service's ledger must hold after ``ops`` (each user's ops in the order they ran):
    ``({vote id: choice id}, users whose outcome is unknown)``: acknowledged casts and changes, less
    acknowledged retractions and votes a change or retraction found gone (404)."""
    live: dict[int, tuple[str, str]] = {}
    uncertain: set[int] = set()
    for op in sorted(ops, key=lambda o: o.sent):
        if op.kind not in ("cast", "change", "retract"):
            continue
        if op.unknown:
            uncertain.add(op.user)
        if op.vote_gone:
            live.pop(op.user, None)
        if op.status != SUCCESS[op.kind]:
            continue
        if op.kind == "cast":
            live[op.user] = (op.vote, op.choice)
        elif op.kind == "change" and op.user in live:
            live[op.user] = (live[op.user][0], op.choice)
        elif op.kind == "retract":
            live.pop(op.user, None)
    return {vote: choice for user, (vote, choice) in live.items() if user not in uncertain}, uncertain


def gone_votes(ops: list[Op]) -> set[str]:
    """Votes that must not be in the ledger after ``ops``: retracted (204), or found gone (404)."""
    return {o.vote for o in ops if o.vote and (o.vote_gone or (o.kind == "retract" and o.status == SUCCESS["retract"]))}


def accepted_after(ops: list[Op], closed_at: float) -> list[Op]:
    """Vote operations sent after ``closed_at`` (when the close's 200 was read) that were accepted."""
    return [o for o in ops if o.kind in ("cast", "change", "retract") and o.sent > closed_at and o.ok]


class CloseRace:
    """``voters`` threads keep casting votes (a fresh user each time) in ``poll`` and ``changers`` threads
    keep changing, retracting and re-casting one user's vote, while the owner closes the poll.

    The close is sent once every thread has had ``warmup`` successes between them; ``during_close``
    (if given) runs in its own thread at the moment the close is sent (kill a process, stop the broker).
    Voting goes on until ``after_close`` s after the close's 200 (and every thread saw at least one
    refusal), bounded by ``limit`` s in all. Every request is an ``Op`` in ``ops``.
    """

    def __init__(
        self,
        platform: Platform,
        poll: Poll,
        *,
        first_user: int,
        voters: int = 50,
        changers: int = 10,
        interval: float = 0.05,
        warmup: int = 150,
        after_close: float = 1.5,
        limit: float = 90.0,
        owner_token: str | None = None,
    ):
        self.platform = platform
        self.poll = poll
        self.voters = voters
        self.changers = changers
        self.interval = interval
        self.warmup = warmup
        self.after_close = after_close
        self.limit = limit
        self.owner_token = owner_token or platform.token(platform.owner_id)
        self._users = itertools.count(first_user)
        self._lock = threading.Lock()
        self.ops: list[Op] = []
        self.close_ops: list[Op] = []
        self.closed_at: float | None = None  # monotonic time the close's 200 was read
        self.close_sent: float | None = None  # when the (first) close request was sent
        self._stop = threading.Event()
        self._refused_after_close: set[int] = set()

    def _next_user(self) -> int:
        with self._lock:
            return next(self._users)

    def _record(self, thread: int, op: Op) -> None:
        with self._lock:
            self.ops.append(op)
            if self.closed_at is not None and op.sent > self.closed_at and not op.ok and not op.unknown:
                self._refused_after_close.add(thread)

    def _voter(self, index: int) -> None:
        with requests.Session() as session:
            choices = itertools.cycle(self.poll.choices[index % len(self.poll.choices) :] + self.poll.choices)
            while not self._stop.is_set():
                client = VoteClient(self.platform, session, self._next_user())
                self._record(index, client.cast(self.poll.id, next(choices)))
                self._stop.wait(self.interval)

    def _changer(self, index: int) -> None:
        with requests.Session() as session:
            client = VoteClient(self.platform, session, self._next_user())
            step = 0
            while not self._stop.is_set():
                step += 1
                others = [c for c in self.poll.choices if c != client.choice]
                if client.vote is None:
                    op = client.cast(self.poll.id, others[step % len(others)])
                elif step % 3 == 0:
                    op = client.retract(self.poll.id)
                else:
                    op = client.change(self.poll.id, others[step % len(others)])
                self._record(index, op)
                self._stop.wait(self.interval)

    def _close(self, during_close: Callable[[], None] | None, deadline: float) -> None:
        url = f"{self.platform.gateway_url}/api/v1/polls/{self.poll.id}/close/"
        headers = {"Authorization": f"Bearer {self.owner_token}"}
        helper = None
        if during_close is not None:
            helper = threading.Thread(target=during_close, daemon=True)
        with requests.Session() as session:
            while time.monotonic() < deadline:
                if helper is not None and not helper.is_alive() and self.close_sent is None:
                    helper.start()
                sent, answered, response, error = timed(session, "POST", url, json={}, headers=headers)
                self.close_sent = self.close_sent or sent
                op = Op("close", self.platform.owner_id, self.poll.id, sent, answered, answer_status(response, error))
                self.close_ops.append(op)
                if op.status == 200:
                    self.closed_at = answered
                    break
                if op.status not in (503, 502, 504) and not op.unknown:
                    raise AssertionError(
                        f"close answered {op.status}: {response.text[:300] if response is not None else ''}"
                    )
                # 503 + Retry-After: the gate could not be reached in time; nothing changed, ask again.
                time.sleep(0.2)
        if helper is not None and helper.is_alive():
            helper.join(60)

    def run(self, during_close: Callable[[], None] | None = None) -> CloseRace:
        started = time.monotonic()
        deadline = started + self.limit
        threads = [threading.Thread(target=self._voter, args=(i,), daemon=True) for i in range(self.voters)]
        threads += [
            threading.Thread(target=self._changer, args=(self.voters + i,), daemon=True) for i in range(self.changers)
        ]
        for thread in threads:
            thread.start()
        try:
            while sum(o.ok for o in list(self.ops)) < self.warmup and time.monotonic() < deadline:
                time.sleep(0.02)
            self._close(during_close, deadline)
            everyone = set(range(len(threads)))
            while time.monotonic() < deadline:
                if self.closed_at is None:
                    break
                with self._lock:
                    seen_refusal = self._refused_after_close >= everyone
                if seen_refusal and time.monotonic() > self.closed_at + self.after_close:
                    break
                time.sleep(0.05)
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(60)
        return self

    def figures(self) -> dict[str, object]:
        from collections import Counter

        kinds = Counter((o.kind, o.status) for o in self.ops)
        after = [o for o in self.ops if self.closed_at is not None and o.sent > self.closed_at]
        window = [
            o for o in self.ops if self.close_sent and self.closed_at and self.close_sent <= o.sent <= self.closed_at
        ]
        return {
            "ops": len(self.ops),
            "by kind and status": {f"{k} {s}": n for (k, s), n in sorted(kinds.items(), key=str)},
            "close attempts": [o.status for o in self.close_ops],
            "close took (s)": round(self.closed_at - self.close_sent, 3)
            if self.closed_at and self.close_sent
            else None,
            "ops sent while the close was in flight": len(window),
            "ops sent after the close's 200": len(after),
            "accepted after the close's 200": len(accepted_after(self.ops, self.closed_at or float("inf"))),
        }


def close_race_problems(race: CloseRace, ledger: dict[str, str]) -> list[str]:
    """What is wrong with a ``CloseRace`` given the poll's ledger afterwards (empty: the gate held).

    No vote operation sent after the close's 200 was read was accepted (they were refused with 422, or
    404 for a vote that is truly gone); the ledger holds, per vote id, exactly what the clients were
    told (acknowledged casts and changes less acknowledged retractions), allowing only one vote per user
    whose request got no answer, and no vote a client was told is gone.
    """
    problems = []
    if race.closed_at is None:
        return [f"the close never answered 200: {[o.status for o in race.close_ops]}"]
    before = sum(o.ok for o in race.ops if o.sent < race.close_sent)
    if before < race.warmup:
        problems.append(f"only {before} operations accepted before the close: the voters were not voting")
    after = [o for o in race.ops if o.sent > race.closed_at]
    if len(after) < race.voters:
        problems.append(f"only {len(after)} operations were sent after the close: no race")
    late = accepted_after(race.ops, race.closed_at)
    if late:
        problems.append(f"{len(late)} vote operations accepted after the close's 200: {late[:3]}")
    refusals = {o.status for o in after if not o.unknown and not (o.vote_gone and o.vote not in ledger)}
    if not refusals <= {422}:
        problems.append(
            f"operations after the close were answered {sorted(refusals, key=str)} (expected 422, or 404 for a"
            " vote not in the ledger)"
        )
    expected, uncertain = expected_ledger(race.ops)
    missing = {v: c for v, c in expected.items() if ledger.get(v) != c}
    if missing:
        problems.append(f"{len(missing)} acknowledged votes not (or not so) in the ledger: {list(missing)[:3]}")
    resurrected = gone_votes(race.ops) & set(ledger)
    if resurrected:
        problems.append(f"{len(resurrected)} votes in the ledger that their client was told are gone: {resurrected}")
    extra = set(ledger) - set(expected)
    if len(extra) > len(uncertain):
        problems.append(f"{len(extra)} votes in the ledger that no client was told about ({len(uncertain)} unanswered)")
    return problems


def wait_for(what: str, check: Callable[[], object], timeout: float = 30.0, interval: float = 0.2) -> object:
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not reached within {timeout} s (last: {last!r})")


def database_url(stack, env_name: str) -> str:  # noqa: ANN001 - a scripts.platform_stack.Stack
    """A stack's database URL (``POLLS_DATABASE_URL``...) in the form psycopg takes."""
    return stack.env[env_name].replace("postgres://", "postgresql://", 1)


def publish(stack, envelopes: list[dict]) -> None:  # noqa: ANN001 - a scripts.platform_stack.Stack
    """Put envelopes on the stack's bus (its broker, vhost and events namespace) like a producer."""
    from kombu import Connection

    from servicekit.events import bus

    broker = stack.env["BROKER_URL"]
    saved = os.environ.get("EVENTS_NAMESPACE")
    os.environ["EVENTS_NAMESPACE"] = stack.env.get("EVENTS_NAMESPACE") or ""
    try:
        with Connection(broker, transport_options={"confirm_publish": True}) as conn:
            producer = conn.Producer()
            bus.declare_topology(producer.channel)
            for envelope in envelopes:
                bus.publish_batch(producer, envelope["type"], [json.dumps(envelope)])
    finally:
        if saved is None:
            os.environ.pop("EVENTS_NAMESPACE", None)
        else:
            os.environ["EVENTS_NAMESPACE"] = saved


def projection(stack, poll_ids) -> dict[str, str]:  # noqa: ANN001
    """choice_service's live vote projection rows of the polls: ``{vote id: choice id}``."""
    import psycopg

    with psycopg.connect(database_url(stack, "CHOICE_DATABASE_URL")) as conn:
        rows = conn.execute(
            "SELECT id::text, choice_id::text FROM choices_voteprojection"
            " WHERE poll_id::text = ANY(%s) AND NOT deleted",
            [list(poll_ids)],
        ).fetchall()
    return dict(rows)


def write_fixture(path: Path, polls: list[Poll]) -> None:
    path.write_text(json.dumps([{"id": p.id, "choices": p.choices} for p in polls]))
