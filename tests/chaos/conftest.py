"""The fault-test platform: its own stack on its own RabbitMQ node, so faults never hit anyone else.

RabbitMQ on this machine is shared by every concurrent test run and by ``make up``; restarting or
``kill -9``-ing it would break them. The fault tests therefore start a *private* RabbitMQ node
(``chaos@localhost`` on 127.0.0.1:5679, data under ``RUN_DIR/rabbitmq``) as a child process of the
test, and a complete platform (``scripts.platform_stack.Stack``: granian x3, Celery worker and beat x3,
Nginx) on ports 18101-18103 / 18180 with databases ``*_chaos``. Both are stopped at the end.

``CHAOS_SCALE=full`` (``make chaos``) runs 10,000 vote operations (casts, changes, retractions);
the default (``make test``) runs 2,000.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for entry in (REPO, REPO / "servicekit"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from scripts.loadgen import Platform  # noqa: E402
from scripts.platform_stack import Stack  # noqa: E402

NAMESPACE = os.environ.get("TEST_NAMESPACE", "")
SUFFIX = f"_{NAMESPACE}" if NAMESPACE else ""
OFFSET = int(os.environ.get("TEST_STACK_PORT_OFFSET", "0"))
BROKER_PORT = 5679 + OFFSET
FULL = os.environ.get("CHAOS_SCALE", "") == "full"
VOTES = int(os.environ.get("CHAOS_VOTES", 10_000 if FULL else 2_000))
POLLS = int(os.environ.get("CHAOS_POLLS", 20))


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class PrivateRabbit:
    """A RabbitMQ node this test starts, restarts and kills (its own process group, its own data)."""

    def __init__(self, base: Path, port: int):
        self.base = base
        self.port = port
        self.node = f"chaos{SUFFIX.replace('_', '-')}@localhost"
        self.proc: subprocess.Popen | None = None
        # A fresh node per session: messages of an earlier run must not be replayed into this one.
        shutil.rmtree(base / "mnesia", ignore_errors=True)
        (base / "mnesia").mkdir(parents=True, exist_ok=True)
        (base / "log").mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{port}\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self, timeout: float = 90.0) -> None:
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} is already taken; is another chaos run active?")
        env = {
            **os.environ,
            "HOME": str(self.base),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.port + 20000),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.base / "rabbit.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        with open(self.base / "server.log", "ab") as log:
            self.proc = subprocess.Popen(
                ["/usr/lib/rabbitmq/bin/rabbitmq-server"],
                env=env,
                cwd=self.base,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        try:
            while not port_open(self.port):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private RabbitMQ did not start; see {self.base / 'server.log'}")
                time.sleep(0.2)
        except BaseException:  # never leave a half-started node behind
            self.kill()
            raise

    def stop(self, timeout: float = 60.0) -> None:
        """Graceful shutdown (SIGTERM: RabbitMQ closes connections and flushes queues)."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """``kill -9`` the node (its whole process group)."""
        self._signal(signal.SIGKILL, 30)

    def _signal(self, sig: int, timeout: float) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        # The Erlang VM may outlive the wrapper shell by a moment.
        deadline = time.monotonic() + timeout
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)


def chaos_ports() -> dict[str, int]:
    base = 18100 + OFFSET
    return {"polls": base + 1, "choices": base + 2, "votes": base + 3, "gateway": base + 80}


def chaos_environment(run_dir: Path, broker_url: str) -> dict[str, str | None]:
    return {
        "RUN_DIR": str(run_dir),
        "DJANGO_ENV": "development",
        "DJANGO_DEBUG": "false",
        "POLLS_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/polls_chaos{SUFFIX}",
        "CHOICE_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/choices_chaos{SUFFIX}",
        "VOTE_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/votes_chaos{SUFFIX}",
        "REDIS_URL": "redis://127.0.0.1:6379/8",
        "BROKER_URL": broker_url,
        "LOG_LEVEL": "WARNING",
        # Faster give-up on the broken paths so the run stays short; semantics are unchanged.
        "EVENTS_RETRY_BACKOFF": "0.2",
        "EVENTS_RETRY_BACKOFF_MAX": "5",
        # Reconciliation is tested on its own (test_reconciliation_repairs_drift): here the events
        # alone must converge, so the periodic repair stays out of the way.
        "CHOICES_RECONCILE_SECONDS": "3600",
        "EVENTS_RELAY_SWEEP_SECONDS": "1",
        # One web instance per service (the tests kill "votes.web" and expect nothing else to answer), no edge
        # budgets (the load comes from one address) and shedding only for multi-second queues, as on the
        # session stack: the faults are what this run tests; tests/e2e covers replicas and limits.
        "SERVICE_REPLICAS": "1",
        "POLLS_REPLICAS": None,
        "CHOICE_REPLICAS": None,
        "VOTE_REPLICAS": None,
        "GATEWAY_EDGE_LIMITS": "off",
        "LOAD_SHEDDING_MAX_WAIT_MS": "5000",
        "LOAD_SHEDDING_MIN_WAIT_MS": "3000",
        "LOAD_SHEDDING_TARGET_MS": "5000",
        "DJANGO_SECRET_KEY": None,
        "JWT_PRIVATE_KEY": None,
        "JWT_PUBLIC_KEYS": None,
        "JWT_PRIVATE_KEY_FILE": None,
        "JWT_PUBLIC_KEYS_FILE": None,
        "SERVICE_PRIVATE_KEY": None,
        "SERVICE_PRIVATE_KEY_FILE": None,
        "SERVICE_PUBLIC_KEYS": None,
        "SERVICE_KEYS_DIR": None,
        "TEST_SERVICE_PRIVATE_KEYS": None,
        "DJANGO_SETTINGS_MODULE": None,
        "PROMETHEUS_MULTIPROC_DIR": None,
        "EVENTS_NAMESPACE": None,
        "EVENT_CONTRACTS_DIR": None,
    }


@pytest.fixture(scope="session")
def rabbit() -> Iterator[PrivateRabbit]:
    base = REPO / ".run" / f"test-chaos{SUFFIX.replace('_', '-')}-rabbitmq"
    node = PrivateRabbit(base, BROKER_PORT)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def chaos_stack(rabbit: PrivateRabbit) -> Iterator[Stack]:
    import redis

    run_dir = REPO / ".run" / f"test-chaos{SUFFIX.replace('_', '-')}"
    env = chaos_environment(run_dir, rabbit.url)
    Stack(run_dir, env=env, ports=chaos_ports(), log=lambda m: None).stop()
    for stale in run_dir.glob("celerybeat-*"):  # beat state of a previous run: start the schedule afresh
        stale.unlink()
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    stack = Stack(
        run_dir,
        env=env,
        ports=chaos_ports(),
        fresh_databases=True,
        web_workers=3,
        worker_concurrency=4,
        log=lambda message: print(f"chaos stack: {message}", file=sys.stderr),
    )
    stack.start()
    try:
        yield stack
    finally:
        leftovers = stack.stop()
        assert not leftovers, f"processes left behind: {leftovers}"


CONSUMING_WORKERS = ("choices.worker", "polls.worker", "votes.worker")


@pytest.fixture(scope="session", autouse=True)
def supervisor(request) -> Iterator[dict]:
    """What systemd/Kubernetes/honcho do in production: a worker that exited is started again."""
    import threading

    if "chaos_stack" not in request.fixturenames:
        yield {}
        return
    stack = request.getfixturevalue("chaos_stack")
    restarts = {"count": 0}
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(1.0):
            try:
                restarts["count"] += len(stack.revive(CONSUMING_WORKERS))
            except Exception as exc:  # keep watching; report at the end
                print(f"supervisor: could not restart a worker: {exc!r}", file=sys.stderr)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield restarts
    finally:
        stop.set()
        thread.join(10)


@pytest.fixture(scope="session")
def platform(chaos_stack: Stack) -> Platform:
    return Platform(
        gateway_url=chaos_stack.gateway_url, run_dir=chaos_stack.run_dir, votes_url=chaos_stack.service_url("votes")
    )
