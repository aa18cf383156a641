"""Contract tests (pact-python 4, V4 pacts), verified against the real providers of the test stack.

1. Consumer halves (``consumer_pacts.py``) run inside each consumer service's Django environment and
   write the pacts: the HTTP replica-miss calls with versions (vote_service → polls_service and
   choice_service, choice_service → polls_service), the gate commands (polls_service → choice_service
   freeze, polls_service → vote_service seal), the ledger read (choice_service → vote_service) and,
   for every event type a service handles, the message it expects (fed through its real handlers).
2. Here each provider is verified: HTTP pacts against the running web server of the provider (state
   handlers seed the provider's data), message pacts against what the provider really emits (the
   test performs the action through the gateway and hands the envelope its outbox stored to Pact).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from pact import Verifier

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import states as S  # noqa: E402

from scripts.loadgen import Platform  # noqa: E402
from servicekit import jwks  # noqa: E402
from servicekit.events.registry import get_registry  # noqa: E402

pytestmark = pytest.mark.stack

SERVICES = {"polls": "polls_service", "choices": "choice_service", "votes": "vote_service"}
DB_ENV = {"polls": "POLLS_DATABASE_URL", "choices": "CHOICE_DATABASE_URL", "votes": "VOTE_DATABASE_URL"}


@pytest.fixture(scope="module")
def pact_dir(tmp_path_factory) -> Path:
    """Run every consumer half; the pact files they write."""
    out = tmp_path_factory.mktemp("pacts")
    for name, directory in SERVICES.items():
        env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
        env.update(
            DJANGO_SETTINGS_MODULE=f"{directory}.settings",
            RUN_DIR=str(out.parent / f"consumer-{name}"),
            REDIS_URL="",
            BROKER_URL="",
            # The consumer signs its calls with a key of its own (the mock provider does not verify it).
            SERVICE_PRIVATE_KEY=jwks.private_pem(jwks.generate_private_key()),
            SERVICE_PUBLIC_KEYS="",
            PACT_DO_NOT_TRACK="true",
            EVENTS_NAMESPACE="",
            EVENT_CONTRACTS_DIR="",
        )
        done = subprocess.run(
            [sys.executable, str(REPO / "tests" / "contract" / "consumer_pacts.py"), name, str(out)],
            cwd=REPO / directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{name} consumer half failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert "consumer pacts written" in done.stdout
    return out


def verify(verifier: Verifier) -> None:
    try:
        verifier.verify()
    except RuntimeError as exc:  # pact prints the mismatch to stdout; keep it in the failure too
        raise AssertionError(f"provider verification failed: {exc}\n{verifier.output(strip_ansi=True)}") from exc


# The provider's Django shell, started once per verification: each state callback runs its seeding code
# there instead of paying for a `manage.py shell` start-up (3-4 s on this machine) per interaction.
SHELL_LOOP = """
import json, sys, traceback
for line in sys.stdin:
    try:
        exec(json.loads(line), {})
        print("ok", flush=True)
    except Exception:
        print("error " + json.dumps(traceback.format_exc()), flush=True)
"""


class ProviderShell:
    """A long-lived ``manage.py shell`` of one service of the stack that runs code sent to it."""

    def __init__(self, stack, service: str):
        svc = stack.service(service)
        self.proc = subprocess.Popen(
            [stack.python, "manage.py", "shell", "-c", SHELL_LOOP],
            cwd=REPO / svc.directory,
            env=stack.service_env(svc),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lock = threading.Lock()

    def run(self, code: str) -> None:
        with self.lock:  # pact calls state handlers from its own threads
            self.proc.stdin.write(json.dumps(code) + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline()
        failure = json.loads(answer[6:]) if answer.startswith("error ") else repr(answer)
        assert answer == "ok\n", f"seeding failed: {failure}"

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def seeder(shell: ProviderShell, service: str):
    """A state handler: (re)seeds the provider before each interaction (a gate command moves state)."""

    def seed(action: str | None = None, parameters: dict | None = None) -> None:
        if action in (None, "setup"):
            shell.run(S.SEED[service])

    return seed


@pytest.mark.parametrize(
    ("provider", "service", "consumers", "states"),
    [
        ("polls_service", "polls", ["vote_service", "choice_service"], [S.POLL_OPEN, S.POLL_MISSING]),
        (
            "choice_service",
            "choices",
            ["vote_service", "polls_service"],
            [S.CHOICES_EXIST, S.CHOICE_MISSING, S.DRAFT_TWO_CHOICES, S.DRAFT_ONE_CHOICE],
        ),
        ("vote_service", "votes", ["polls_service", "choice_service"], [S.VOTES_OPEN, S.LEDGER_TWO_VOTES]),
    ],
)
def test_http_provider_honours_its_consumers(stack, pact_dir, provider, service, consumers, states):
    platform = Platform(gateway_url=stack.gateway_url, run_dir=stack.run_dir)
    shell = ProviderShell(stack, service)
    seed = seeder(shell, service)
    try:
        # Each consumer's pact is replayed with that consumer's own service token: the provider's
        # allow-list of callers is part of what is verified.
        for consumer in consumers:
            caller = {v: k for k, v in SERVICES.items()}[consumer]
            token = platform.service_token(caller, service, lifetime=300)
            verifier = (
                Verifier(provider, host="127.0.0.1")
                .add_transport(url=stack.service_url(service))
                .state_handler(dict.fromkeys(states, seed), teardown=True)
                .add_custom_header("Authorization", f"Service {token}")
                # Requests and state callbacks time out after 5 s by default; the first state callback waits
                # for the provider shell's Django start-up (3-4 s on a loaded 2-core machine, once longer).
                .set_request_timeout(30_000)
                .add_source(pact_dir / f"{consumer}-{provider}.json")
            )
            verify(verifier)
    finally:
        shell.close()


class Producer:
    """Performs real actions through the gateway and returns the envelopes the producer stored."""

    def __init__(self, stack):
        self.stack = stack
        self.platform = Platform(gateway_url=stack.gateway_url, run_dir=stack.run_dir, owner_id=910_001)
        self.owner = self.platform.token(910_001)
        self.ran: set[str] = set()

    def _call(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        return self.platform._call(
            method, path, token=self.owner if token is None else token, body=body, expect=(200, 201, 204)
        )

    def latest(self, service: str, event_type: str) -> dict:
        url = self.stack.env[DB_ENV[service]].replace("postgres://", "postgresql://", 1)
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT envelope FROM servicekit_outbox_event WHERE event_type = %s ORDER BY id DESC LIMIT 1",
                [event_type],
            ).fetchone()
        assert row, f"{service} stored no {event_type} event"
        return row[0]

    def run_polls_and_choices(self) -> None:
        if "polls" in self.ran:
            return
        self.ran.add("polls")
        poll = self._call("POST", "/api/v1/polls/", {"question": f"Contract events {time.time()}"})
        self._call("PATCH", f"/api/v1/polls/{poll['id']}/", {"question": "Contract events, edited"})
        first = self._call("POST", "/api/v1/choices/", {"poll": poll["id"], "text": "Yes"})
        self._call("PATCH", f"/api/v1/choices/{first['id']}/", {"text": "Yes!"})
        doomed = self._call("POST", "/api/v1/choices/", {"poll": poll["id"], "text": "Maybe"})
        self._call("DELETE", f"/api/v1/choices/{doomed['id']}/")
        self._call("POST", "/api/v1/choices/", {"poll": poll["id"], "text": "No"})
        self._call("POST", f"/api/v1/polls/{poll['id']}/open/", {})
        self._call("POST", f"/api/v1/polls/{poll['id']}/close/", {})
        gone = self._call("POST", "/api/v1/polls/", {"question": "Contract poll to delete"})
        self._call("DELETE", f"/api/v1/polls/{gone['id']}/")

    def run_votes(self) -> None:
        if "votes" in self.ran:
            return
        self.ran.add("votes")
        polls = self.platform.create_polls(1, choices=2, prefix="Contract votes")
        self.platform.wait_warm(polls)
        voter = self.platform.token(910_002)
        poll = polls[0]
        vote = self._call("POST", "/api/v1/votes/", {"poll": poll.id, "choice": poll.choices[0]}, token=voter)
        self._call("PATCH", f"/api/v2/votes/{vote['id']}/", {"choice": poll.choices[1]}, token=voter)
        self._call("DELETE", f"/api/v1/votes/{vote['id']}/", token=voter)

    def run_sessions(self) -> None:
        if "sessions" in self.ran:
            return
        self.ran.add("sessions")
        credentials = {"username": f"contract-{uuid.uuid4().hex[:10]}", "password": f"{uuid.uuid4()} contract"}
        self._call("POST", "/api/v1/auth/register/", credentials, token="")
        tokens = self._call("POST", "/api/v1/auth/token/", credentials, token="")
        self._call("POST", "/api/v2/auth/logout/all/", {}, token=tokens["access"])

    def message(self, service: str, event_type: str) -> dict:
        if service == "votes":
            self.run_votes()
        elif event_type.startswith("user."):
            self.run_sessions()
        else:
            self.run_polls_and_choices()
        envelope = self.latest(service, event_type)
        return {"contents": json.dumps(envelope).encode(), "content_type": "application/json", "metadata": None}


@pytest.mark.parametrize("service", ["polls", "choices", "votes"])
def test_every_consumed_event_matches_what_its_producer_emits(stack, pact_dir, service):
    registry = get_registry()
    provider = f"{SERVICES[service]}-events"
    sources = sorted(pact_dir.glob(f"*-events-{provider}.json"))
    assert sources, f"no consumer expects events from {service}"
    producer = Producer(stack)
    handlers = {}
    for event_type in registry.produced_by(service):
        handlers[f"a {event_type} event"] = (
            lambda name=None, metadata=None, t=event_type: producer.message(service, t)  # noqa: ARG005
        )
    verifier = Verifier(provider).message_handler(handlers)
    for source in sources:
        verifier.add_source(source)
    verify(verifier)
    # Every envelope also satisfies the registry's schema (what every consumer validates on receipt).
    for event_type in registry.produced_by(service):
        registry.validate_envelope(producer.latest(service, event_type))
