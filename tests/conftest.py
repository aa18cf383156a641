"""Cross-service test harness: one real platform for the whole session, started like `make up`.

The session fixture ``stack`` runs ``scripts.platform_stack.Stack`` -- the same code ``make up`` runs -- on
its own ports (18001-18003, gateway 18080), its own ``RUN_DIR`` (``.run/test-stack``) and its own
PostgreSQL databases (``polls_stack``, ``choices_stack``, ``votes_stack``, recreated every session),
Redis DB 9 and the RabbitMQ vhost ``polls_test``; so ``make test`` runs while ``make up`` does. It
stops every process at the end of the session and fails the session if anything is left behind.

``TEST_NAMESPACE=<name>`` gives a concurrent run its own databases, run folder, Redis DB and vhost;
``TEST_STACK_PORT_OFFSET=<n>`` shifts its ports. The session stack runs one web instance per service
(CI time); ``TEST_SERVICE_REPLICAS=2`` runs the suite against two behind the gateway (ports + 20).

Fixtures for other suites (contract, e2e, browser, chaos tests):

- ``stack``: the running ``Stack``: ``stack.gateway_url``, ``stack.service_url("votes")``,
  ``stack.kill("votes.worker")``, ``stack.start_process(...)``, ``stack.restart(...)``,
  ``stack.manage("polls", "shell", "-c", ...)``, ``stack.processes[name].pid``, ``stack.run_dir``.
- ``gateway``: a ``requests.Session`` whose relative URLs go to the gateway (``gateway.get("/healthz")``).
- ``https_gateway``: the same over HTTPS (``stack.gateway_https_url``: TLS 1.3, gateway port + 363),
  trusting the stack's development CA (``dev_ca``: ``RUN_DIR/secrets/dev-ca.pem``) and nothing else.
- ``operator_credentials``: ``(username, password)`` of the operator account of this stack.
- ``otlp_receiver``: the ``tests.otlp_receiver.OtlpReceiver`` every process of the stack exports spans to.
"""

from __future__ import annotations

import os
import re
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scripts.platform_stack import SERVICES, Stack  # noqa: E402
from tests.otlp_receiver import OtlpReceiver  # noqa: E402

NAMESPACE = os.environ.get("TEST_NAMESPACE", "")
PORT_OFFSET = int(os.environ.get("TEST_STACK_PORT_OFFSET", "0"))
OPERATOR = ("operator", "operator-dev-password")


def _suffix() -> str:
    return f"_{NAMESPACE}" if NAMESPACE else ""


def test_stack_ports(base: int = 18000) -> dict[str, int]:
    """Ports of a test stack: services at base+1..3 and the gateway at base+80 (plus the offset)."""
    return {
        "polls": base + 1 + PORT_OFFSET,
        "choices": base + 2 + PORT_OFFSET,
        "votes": base + 3 + PORT_OFFSET,
        "gateway": base + 80 + PORT_OFFSET,
    }


test_stack_ports.__test__ = False  # a helper, not a test


def stack_environment(run_dir: Path, otlp_endpoint: str | None = None) -> dict[str, str | None]:
    """The environment of the session's stack: real PostgreSQL, Redis and RabbitMQ on localhost.

    Every process exports its spans to ``otlp_endpoint`` (the session's in-process OTLP receiver), but
    ordinary traffic is not sampled: the gateway marks no trace sampled (0 %) and the services sample
    parent-based with a ratio of 0 for roots, so only a request that brings its own sampled
    ``traceparent`` (tests/e2e/test_tracing.py) is recorded, across every process it reaches."""
    suffix = _suffix()
    redis_db = 9 if not NAMESPACE else 10 + zlib.crc32(NAMESPACE.encode()) % 6
    vhost = f"polls_test{suffix}"
    return {
        "RUN_DIR": str(run_dir),
        "DJANGO_ENV": "development",
        "DJANGO_DEBUG": "false",
        "POLLS_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/polls_stack{suffix}",
        "CHOICE_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/choices_stack{suffix}",
        "VOTE_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/votes_stack{suffix}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        "OPERATOR_USERNAME": OPERATOR[0],
        "OPERATOR_PASSWORD": OPERATOR[1],
        "LOG_LEVEL": "INFO",
        # Django's 1,000,000 PBKDF2 iterations cost ~0.4 s of CPU per register or login, and this suite does
        # ~1,300 of them; production refuses fewer (accounts.hashers).
        "PASSWORD_HASH_ITERATIONS": "1000",
        # Secrets come from the stack's own RUN_DIR/secrets (generated), never from the caller's env.
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
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": None,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0",
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms: spans reach the receiver quickly
        "OTEL_SDK_DISABLED": None,
        "GATEWAY_TRACE_SAMPLE_PERCENT": "0",
        # HTTPS beside HTTP (gateway port + 363) with the stack's own dev certificate; plain HTTP is not redirected.
        "GATEWAY_TLS_PORT": str(test_stack_ports()["gateway"] + 363),
        "GATEWAY_TLS_CERT_FILE": None,
        "GATEWAY_TLS_KEY_FILE": None,
        "GATEWAY_TLS_PROTOCOLS": None,
        "GATEWAY_HTTPS_REDIRECT": "false",
        "GATEWAY_HSTS_MAX_AGE": None,
        # Edge limits on, with budgets the suite never reaches by accident (test_auth_gateway sends 500 logins
        # from one address at once; schemathesis and the chaos load run flat out). tests/e2e/test_edge.py
        # checks the limits on a gateway of its own with tiny budgets.
        "GATEWAY_EDGE_LIMITS": "on",
        "GATEWAY_EDGE_READS": "1000/4000",
        "GATEWAY_EDGE_WRITES": "1000/4000",
        "GATEWAY_EDGE_AUTH": "500/2000",
        "GATEWAY_EDGE_CONNECTIONS": "2048",
        # Load shedding on, but only for queues no test builds on purpose: the suite runs on two busy cores
        # beside the own-stack lane, where a vote can wait a second. tests/e2e/test_overload.py proves the
        # shedding on a stack of its own with tiny limits.
        "LOAD_SHEDDING": "on",
        "LOAD_SHEDDING_MAX_WAIT_MS": "5000",
        "LOAD_SHEDDING_MIN_WAIT_MS": "3000",
        "LOAD_SHEDDING_TARGET_MS": "5000",
        # schemathesis probes other users' objects on purpose (hundreds of 403s a minute for one token):
        # the 403-burst rule would block its user. The rule is proven in servicekit/tests/test_audit.py.
        "DETECT_FORBIDDEN_BURST": "100000/1m",
        # Web instances per service (tests/e2e/test_failover.py runs its own stack with two).
        "SERVICE_REPLICAS": os.environ.get("TEST_SERVICE_REPLICAS") or "1",
        "POLLS_REPLICAS": None,
        "CHOICE_REPLICAS": None,
        "VOTE_REPLICAS": None,
    }


def _flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


@pytest.fixture(scope="session")
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """The session's OTLP/HTTP trace receiver (in this process); the stack exports every span to it."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def stack(otlp_receiver: OtlpReceiver) -> Iterator[Stack]:
    run_dir = REPO / ".run" / f"test-stack{_suffix().replace('_', '-')}"
    env = stack_environment(run_dir, otlp_endpoint=otlp_receiver.endpoint)
    previous = Stack(run_dir, env=env, ports=test_stack_ports(), log=lambda m: None)
    owner = previous.read_state().get("supervisor_pid")
    if owner and owner != os.getpid() and previous.supervisor_alive() and previous.running_elsewhere():
        pytest.exit(
            f"another test session (pid {owner}) is using the test stack in {run_dir}; "
            "run this one with TEST_NAMESPACE=<name> TEST_STACK_PORT_OFFSET=<n> (see tests/conftest.py)",
            returncode=3,
        )
    # A previous session killed hard may have left its processes: stop them first (by recorded PID).
    previous.stop()
    _flush_redis(env["REDIS_URL"])
    instance = Stack(
        run_dir,
        env=env,
        ports=test_stack_ports(),
        fresh_databases=True,
        web_workers=2,
        log=lambda message: print(f"stack: {message}", file=sys.stderr),
    )
    instance.start(supervisor_pid=os.getpid())
    try:
        yield instance
    finally:
        leftovers = instance.stop()
        assert not leftovers, f"processes left behind after stop: {leftovers}"


class GatewaySession(requests.Session):
    """``requests.Session`` resolving relative URLs against the gateway."""

    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url

    def request(self, method, url, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        kwargs.setdefault("timeout", 15)
        # Per request, or REQUESTS_CA_BUNDLE in the environment would win over self.verify (psf/requests#3829).
        kwargs.setdefault("verify", self.verify)
        return super().request(method, urljoin(self.base_url, url), *args, **kwargs)


@pytest.fixture
def gateway(stack: Stack) -> Iterator[GatewaySession]:
    with GatewaySession(stack.gateway_url) as session:
        yield session


@pytest.fixture(scope="session")
def dev_ca(stack: Stack) -> Path:
    """The development CA the stack's gateway certificate is issued by (what a client trusts)."""
    return stack.run_dir / "secrets" / "dev-ca.pem"


@pytest.fixture
def https_gateway(stack: Stack, dev_ca: Path) -> Iterator[GatewaySession]:
    with GatewaySession(stack.gateway_https_url) as session:
        session.verify = str(dev_ca)
        yield session


@pytest.fixture(scope="session")
def operator_credentials(stack: Stack) -> tuple[str, str]:
    return OPERATOR


@pytest.fixture
def operator_admin(stack: Stack, operator_credentials: tuple[str, str]) -> Iterator[requests.Session]:
    """A browser-like session logged in to the polls admin as the stack's operator."""
    session = requests.Session()
    login_url = f"{stack.gateway_url}/admin/polls/login/"
    page = session.get(login_url, timeout=15)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    username, password = operator_credentials
    response = session.post(
        login_url,
        data={"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/admin/polls/"},
        headers={"Origin": stack.gateway_url, "Referer": login_url},
        allow_redirects=False,
        timeout=15,
    )
    assert response.status_code == 302, response.text[:500]
    yield session
    session.close()


__all__ = ["SERVICES", "Stack", "stack_environment", "test_stack_ports"]
