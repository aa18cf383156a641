"""Foundation end-to-end: the platform brought up exactly like `make up`, checked through the gateway.

Covers the gateway (health, routing table, request ids, body limit, /internal/ closed, static client
with CSP), every service's /healthz, /readyz and /metrics, the three Django admins behind their
prefixes (static files, a real login with CSRF), the supervisor's contract (second `up`, busy port,
unreachable backend named in one line, kill/restart by name, `down` leaves nothing behind) and the
embedded defaults (SQLite, filesystem broker, file cache) on a second stack.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from scripts.platform_stack import REPO, SERVICES, Stack, StackError, free_port, group_members, http_status

SERVICE_NAMES = [s.name for s in SERVICES]


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def gateway_log_entry(stack: Stack, request_id: str, timeout: float = 5.0) -> dict:
    """The gateway's JSON access-log line of the request carrying ``request_id``."""
    log = stack.logs_dir / "gateway.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if request_id in line and line.startswith("{"):
                entry = json.loads(line)
                if entry.get("http", {}).get("request", {}).get("id") == request_id:  # ECS http.request.id
                    return entry
        time.sleep(0.1)
    raise AssertionError(f"no gateway access-log line for request {request_id}")


def upstream_of(stack: Stack, gateway: requests.Session, method: str, path: str) -> str | None:
    """Which service the gateway sent ``method path`` to (by upstream port), or None if it answered itself."""
    request_id = f"route-{uuid.uuid4().hex}"
    gateway.request(method, path, headers={"X-Request-ID": request_id}, allow_redirects=False)
    entry = gateway_log_entry(stack, request_id)
    upstream = entry["gateway"]["upstream"]["address"]
    if not upstream:
        return None
    port = int(upstream.split(",")[0].rsplit(":", 1)[1])
    return next(name for name, p in stack.ports.items() if p == port)


def pids_of_stack(stack: Stack) -> set[int]:
    """Every live process of the stack: group leaders and their workers/children."""
    pids: set[int] = set()
    for proc in stack.recorded_processes().values():
        pids.update(group_members(proc.pid))
    return pids


# --------------------------------------------------------------------------------------------------
# the gateway
# --------------------------------------------------------------------------------------------------


def test_gateway_answers_its_own_healthz(gateway: requests.Session) -> None:
    response = gateway.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "gateway"}
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("method", "path", "service"),
    [
        ("GET", "/api/v1/polls/", "polls"),
        ("GET", "/api/v2/polls/3f1c/", "polls"),
        ("POST", "/api/v3/auth/token/", "polls"),
        ("GET", "/api/v1/auth/me/", "polls"),
        ("GET", "/api/v3/", "polls"),
        ("GET", "/api/docs/", "polls"),
        ("GET", "/.well-known/jwks.json", "polls"),
        ("GET", "/api/schema/polls/v1/", "polls"),
        ("GET", "/admin/polls/login/", "polls"),
        ("GET", "/static/polls/admin/css/base.css", "polls"),
        ("GET", "/api/v1/choices/", "choices"),
        ("GET", "/api/v3/choices/abc/", "choices"),
        ("GET", "/api/schema/choices/v2/", "choices"),
        ("GET", "/admin/choices/login/", "choices"),
        ("GET", "/static/choices/admin/css/base.css", "choices"),
        ("GET", "/api/v2/votes/", "votes"),
        ("GET", "/api/v1/results/abc/", "votes"),
        ("GET", "/api/v3/results/abc/", "votes"),
        ("GET", "/api/schema/votes/v3/", "votes"),
        ("GET", "/admin/votes/login/", "votes"),
        ("GET", "/static/votes/admin/css/base.css", "votes"),
    ],
)
def test_gateway_routes_each_path_to_its_service(
    stack: Stack, gateway: requests.Session, method: str, path: str, service: str
) -> None:
    assert upstream_of(stack, gateway, method, path) == service


@pytest.mark.parametrize(
    "path",
    [
        "/internal/polls/1/",
        "/internal/",
        "/api/v4/polls/",
        "/api/v1/pollsters/",
        "/api/v1/",
        "/admin/",
        "/static/x.css",
    ],
)
def test_gateway_never_forwards_internal_or_unknown_api_paths(
    stack: Stack, gateway: requests.Session, path: str
) -> None:
    request_id = f"closed-{uuid.uuid4().hex}"
    response = gateway.get(path, headers={"X-Request-ID": request_id})
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == 404
    assert gateway_log_entry(stack, request_id)["gateway"]["upstream"]["address"] == ""


def test_request_id_is_passed_to_the_service_and_echoed(stack: Stack, gateway: requests.Session) -> None:
    request_id = f"e2e-{uuid.uuid4().hex}"
    response = gateway.get("/admin/votes/login/", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == request_id
    # The service logged the same id: it travelled through the gateway, not just back from it.
    deadline = time.monotonic() + 5
    while request_id not in (stack.logs_dir / "votes.web.log").read_text(errors="replace"):
        assert time.monotonic() < deadline, "the vote service never logged the gateway's request id"
        time.sleep(0.1)


def test_gateway_replaces_an_unsafe_request_id(gateway: requests.Session) -> None:
    response = gateway.get("/admin/polls/login/", headers={"X-Request-ID": "bad id with spaces"})
    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    generated = gateway.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])


def test_gateway_rejects_bodies_over_64k_as_problem_json(stack: Stack, gateway: requests.Session) -> None:
    request_id = f"big-{uuid.uuid4().hex}"
    response = gateway.post(
        "/api/v1/polls/",
        data=b"x" * (64 * 1024 + 1),
        headers={"Content-Type": "application/json", "X-Request-ID": request_id},
    )
    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 413 and body["title"] == "Payload Too Large"
    assert gateway_log_entry(stack, request_id)["gateway"]["upstream"]["address"] == ""


def test_gateway_accepts_a_body_of_exactly_64k(stack: Stack, gateway: requests.Session) -> None:
    request_id = f"edge-{uuid.uuid4().hex}"
    response = gateway.post(
        "/api/v1/polls/",
        data=b" " * (64 * 1024),
        headers={"Content-Type": "application/json", "X-Request-ID": request_id},
    )
    assert response.status_code != 413
    assert gateway_log_entry(stack, request_id)["gateway"]["upstream"]["address"] != ""


def test_gateway_sets_forwarded_headers_for_the_service(stack: Stack, gateway: requests.Session) -> None:
    # The admin builds its "next" redirect from Host / X-Forwarded-*: it must point at the gateway.
    response = gateway.get("/admin/polls/", allow_redirects=False)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(("/admin/polls/login/", f"{stack.gateway_url}/admin/polls/login/"))


def test_browser_client_is_served_with_a_strict_csp(gateway: requests.Session) -> None:
    response = gateway.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_hashed_client_assets_are_cached_for_a_year(gateway: requests.Session) -> None:
    assets = sorted((REPO / "web" / "dist" / "assets").rglob("*.*")) if (REPO / "web" / "dist").is_dir() else []
    if not assets:
        # No built client: the same rule must still apply to any /assets/ path nginx serves.
        response = gateway.get("/assets/missing.0123456789ab.js")
        assert response.status_code == 404
        return
    asset = assets[0].relative_to(REPO / "web" / "dist")
    response = gateway.get(f"/{asset.as_posix()}")
    assert response.status_code == 200
    assert "max-age=31536000" in response.headers["Cache-Control"]
    assert "immutable" in response.headers["Cache-Control"]


def test_dead_upstream_is_a_503_problem_and_recovers(stack: Stack, gateway: requests.Session) -> None:
    stack.kill("choices.web")
    try:
        response = gateway.get("/admin/choices/login/")
        assert response.status_code == 503
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert response.headers["Retry-After"] == "5"
    finally:
        stack.start_process("choices.web")
    # Passive health may keep the only instance "failed" for fail_timeout: wait for it to come back.
    deadline = time.monotonic() + 30
    while gateway.get("/admin/choices/login/").status_code != 200:
        assert time.monotonic() < deadline, "choices did not come back behind the gateway"
        time.sleep(0.5)


# --------------------------------------------------------------------------------------------------
# the services
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_service_health_readiness_and_metrics(stack: Stack, service: str) -> None:
    base = stack.service_url(service)
    health = requests.get(f"{base}/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["service"] == service
    ready = requests.get(f"{base}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}
    assert body["backends"] == {"database": "postgresql", "cache": "redis", "broker": "amqp"}
    metrics = requests.get(f"{base}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert f'service="{service}"' in metrics.text and "http_requests_total" in metrics.text


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_process_of_the_service_runs(stack: Stack, service: str) -> None:
    for role in ("web", "worker", "beat"):
        assert stack.processes[f"{service}.{role}"].alive(), f"{service}.{role} is not running"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_admin_login_page_and_static_files_load_through_the_gateway(gateway: requests.Session, service: str) -> None:
    page = gateway.get(f"/admin/{service}/login/")
    assert page.status_code == 200
    assert f"{service} service administration" in page.text
    stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', page.text)
    assert stylesheets, "the login page links no stylesheet"
    for href in stylesheets:
        assert href.startswith(f"/static/{service}/")
        css = gateway.get(href)
        assert css.status_code == 200, href
        assert css.headers["Content-Type"].startswith("text/css")


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_admin_login_works_through_the_gateway(stack: Stack, gateway: requests.Session, service: str) -> None:
    username, password = f"e2e-staff-{service}", f"e2e-{uuid.uuid4().hex}"
    stack.manage(
        service,
        "createsuperuser",
        "--noinput",
        "--username",
        username,
        "--email",
        f"{username}@example.com",
        extra_env={"DJANGO_SUPERUSER_PASSWORD": password},
    )
    login_url = f"/admin/{service}/login/"
    page = gateway.get(login_url)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    assert gateway.cookies.get(f"{service}_csrftoken"), "the CSRF cookie is scoped to the admin prefix"
    response = gateway.post(
        login_url,
        data={"csrfmiddlewaretoken": token, "username": username, "password": password, "next": f"/admin/{service}/"},
        # A browser sends Origin: Django compares it with the Host the gateway forwards.
        headers={"Origin": stack.gateway_url, "Referer": f"{stack.gateway_url}{login_url}"},
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:500]
    assert response.headers["Location"].endswith(f"/admin/{service}/")
    index = gateway.get(f"/admin/{service}/")
    assert index.status_code == 200
    assert "Log out" in index.text or "logout" in index.text


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_wrong_admin_password_is_refused(gateway: requests.Session, service: str) -> None:
    login_url = f"/admin/{service}/login/"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', gateway.get(login_url).text).group(1)
    response = gateway.post(
        login_url,
        data={"csrfmiddlewaretoken": token, "username": "nobody", "password": "wrong"},
        allow_redirects=False,
    )
    assert response.status_code == 200
    assert "Please enter the correct" in response.text


def test_readyz_names_a_dead_broker(stack: Stack) -> None:
    """The vote service, configured with a broker nobody listens on, reports 503 naming the broker."""
    dead = free_port()
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/readyz', HTTP_HOST='127.0.0.1');"
        "print('READYZ', r.status_code, r['Content-Type'], json.dumps(r.json()))"
    )
    env = {**stack.service_env(stack.service("votes")), "BROKER_URL": f"amqp://guest:guest@127.0.0.1:{dead}//"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    result = subprocess.run(
        [stack.python, "-c", script], cwd=REPO / "vote_service", env=env, capture_output=True, text=True, timeout=60
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("READYZ"))
    _, status, content_type, body = line.split(" ", 3)
    assert status == "503"
    assert content_type == "application/problem+json"
    problem = json.loads(body)
    assert problem["checks"]["broker"] == "unreachable"
    assert problem["checks"]["database"] == "ok"
    assert "broker" in problem["detail"]


# --------------------------------------------------------------------------------------------------
# the supervisor
# --------------------------------------------------------------------------------------------------


def _cli_env(stack: Stack) -> dict[str, str]:
    env = {k: v for k, v in stack.env.items() if v is not None}
    env.update(
        {
            "RUN_DIR": str(stack.run_dir),
            "POLLS_PORT": str(stack.ports["polls"]),
            "CHOICE_PORT": str(stack.ports["choices"]),
            "VOTE_PORT": str(stack.ports["votes"]),
            "GATEWAY_PORT": str(stack.ports["gateway"]),
        }
    )
    return env


def test_second_up_says_it_runs_and_changes_nothing(stack: Stack) -> None:
    before = {name: proc.pid for name, proc in stack.processes.items()}
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "stack.py"), "up", "--detach"],
        env=_cli_env(stack),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stdout
    assert {name: proc.pid for name, proc in stack.processes.items()} == before
    assert all(proc.alive() for proc in stack.processes.values())


def test_status_lists_every_process_as_running(stack: Stack) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "stack.py"), "status"],
        env=_cli_env(stack),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for name in stack.processes:
        line = next(line for line in result.stdout.splitlines() if line.startswith(name + " "))
        assert "running" in line, line
    assert "gateway" in result.stdout and "/healthz 200" in result.stdout


def test_worker_can_be_killed_and_restarted_by_name(stack: Stack) -> None:
    worker = stack.processes["votes.worker"]
    members = group_members(worker.pid)
    assert worker.pid in members and len(members) >= 2, "a prefork worker has a parent and children"
    stack.kill("votes.worker")
    assert not group_members(worker.pid)
    restarted = stack.start_process("votes.worker")
    assert restarted.pid != worker.pid and restarted.alive()
    assert stack.read_state()["processes"]["votes.worker"]["pid"] == restarted.pid


def test_busy_port_is_reported_instead_of_failing(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        other = Stack(
            tmp_path / "run",
            env={"RUN_DIR": str(tmp_path / "run")},
            ports={"polls": port, "choices": free_port(), "votes": free_port(), "gateway": free_port()},
            log=lambda m: None,
        )
        with pytest.raises(StackError, match=rf"port {port} \(polls\) is already in use.*POLLS_PORT"):
            other.start()
    assert not (tmp_path / "run" / "stack.json").exists()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "POLLS_DATABASE_URL",
            "postgres://postgres:pw@127.0.0.1:{port}/nothing",
            r"polls: database unreachable \(postgres://postgres:\*\*\*@127.0.0.1:{port}/nothing\): PostgreSQL at",
        ),
        ("BROKER_URL", "amqp://guest:guest@127.0.0.1:{port}//", r"polls: broker unreachable \(amqp://guest:\*\*\*@"),
    ],
)
def test_unreachable_backend_stops_up_with_one_line_naming_it(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    dead = free_port()
    run = tmp_path / "run"
    env = {
        "RUN_DIR": str(run),
        "POLLS_DATABASE_URL": f"sqlite:///{run}/polls.sqlite3",
        "CHOICE_DATABASE_URL": f"sqlite:///{run}/choices.sqlite3",
        "VOTE_DATABASE_URL": f"sqlite:///{run}/votes.sqlite3",
        "REDIS_URL": "",
        "BROKER_URL": "",
        variable: value.format(port=dead),
    }
    ports = {"polls": free_port(), "choices": free_port(), "votes": free_port(), "gateway": free_port()}
    with pytest.raises(StackError, match=message.format(port=dead)) as failure:
        Stack(run, env=env, ports=ports, log=lambda m: None).start()
    assert "\n" not in str(failure.value)
    # Nothing was migrated and nothing started.
    assert not (run / "stack.json").exists()
    assert not (run / "polls.sqlite3").exists() or variable == "BROKER_URL"
    for port in ports.values():
        assert http_status(f"http://127.0.0.1:{port}/healthz", timeout=0.5) is None


def test_embedded_defaults_come_up_and_down_leaves_nothing(tmp_path: Path) -> None:
    """`make up` with nothing configured (SQLite, filesystem broker, file cache), then `make down`."""
    run = tmp_path / "embedded"
    ports = {"polls": free_port(), "choices": free_port(), "votes": free_port(), "gateway": free_port()}
    env = {
        "RUN_DIR": str(run),
        # Explicit embedded values: a developer's .env must not leak into this test.
        "POLLS_DATABASE_URL": f"sqlite:///{run}/polls.sqlite3",
        "CHOICE_DATABASE_URL": f"sqlite:///{run}/choices.sqlite3",
        "VOTE_DATABASE_URL": f"sqlite:///{run}/votes.sqlite3",
        "REDIS_URL": "",
        "BROKER_URL": "",
        "POLLS_PORT": str(ports["polls"]),
        "CHOICE_PORT": str(ports["choices"]),
        "VOTE_PORT": str(ports["votes"]),
        "GATEWAY_PORT": str(ports["gateway"]),
        "WEB_WORKERS": "1",
        "CELERY_WORKER_CONCURRENCY": "1",
    }
    cli_env = {**{k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}, **env}
    up = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "stack.py"), "up", "--detach"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    stack = Stack(run, env=env, log=lambda m: None)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "database sqlite3" in up.stdout and "cache file" in up.stdout and "broker filesystem" in up.stdout
        gateway_url = f"http://127.0.0.1:{ports['gateway']}"
        assert f"client      {gateway_url}/" in up.stdout
        assert f"{gateway_url}/admin/votes/" in up.stdout
        assert requests.get(f"{gateway_url}/healthz", timeout=5).status_code == 200
        for service in SERVICE_NAMES:
            ready = requests.get(f"http://127.0.0.1:{ports[service]}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
            assert ready.json()["backends"] == {"database": "sqlite3", "cache": "file", "broker": "filesystem"}
            page = requests.get(f"{gateway_url}/admin/{service}/login/", timeout=10)
            assert page.status_code == 200
            assert (run / f"{service}.sqlite3").is_file()
        pids = pids_of_stack(stack)
        assert len(pids) >= 10
    finally:
        down = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "stack.py"), "down"],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped 13 processes" in down.stdout  # per service 2 web instances (make up's default), worker, beat
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)]
    assert not alive, f"left behind after down: {alive}"
    for port in ports.values():
        assert http_status(f"http://127.0.0.1:{port}/healthz", timeout=0.5) is None
    assert not (run / "stack.json").exists()


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X"
    return stat[stat.rindex(")") + 2 :].split()[0]
