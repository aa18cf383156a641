#!/usr/bin/env python3
"""The process supervisor of the Polls Platform: ``make up`` and the cross-service test session use it.

    python3 scripts/stack.py up            # foreground: prefixed logs of every process; Ctrl-C stops all
    python3 scripts/stack.py up --detach   # start, wait until healthy, return (stop with `down`)
    python3 scripts/stack.py down          # stop everything `up` started (by PID and process group)
    python3 scripts/stack.py status        # what runs, what answers
    python3 scripts/stack.py logs          # follow every process's log (RUN_DIR/logs/*.log)

``up`` creates the virtualenv when needed (``.venv``, pinned ``requirements/dev.txt`` plus editable
servicekit; a hash of the requirement files avoids reinstalling), generates dev secrets, starts local
PostgreSQL/Redis/RabbitMQ when a configured URL points at this machine, checks that each service's
database, cache and broker answer (one clear line naming the first that does not, exit 1), migrates
every service's own database, collects static files, runs ``ensure_operator`` when a service has it,
then starts per service a web server (granian, ``servicekit.server``), a Celery worker and a Celery
beat, plus the Nginx gateway, waits until every ``/healthz`` answers and prints the chosen backends
and the URLs.

Ports come from ``POLLS_PORT`` / ``CHOICE_PORT`` / ``VOTE_PORT`` / ``GATEWAY_PORT`` (8001-8003, 8080);
the state lives in ``RUN_DIR`` (default ``<repo>/.run``): ``stack.json`` (PIDs), ``logs/``, ``nginx/``.

Tests drive the same code path through the API::

    from scripts.stack import Stack
    stack = Stack(run_dir, ports={"polls": 18001, "choices": 18002, "votes": 18003, "gateway": 18080},
                  env={"POLLS_DATABASE_URL": "postgres://...", ...}, fresh_databases=True)
    stack.start()                      # prepare + launch + wait healthy
    stack.kill("votes.worker")         # SIGKILL one process group (chaos)
    stack.start_process("votes.worker")
    stack.restart("gateway")
    stack.stop()                       # everything, nothing left behind

Process names: ``<service>.web``, ``<service>.worker``, ``<service>.beat`` for service in polls,
choices, votes, and ``gateway``. Only the bootstrap (virtualenv) part runs on the system Python; the
script re-executes itself inside the virtualenv afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("VENV") or REPO / ".venv")
REQUIREMENT_FILES = sorted((REPO / "requirements").glob("*.txt")) + [REPO / "servicekit" / "pyproject.toml"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


@dataclass(frozen=True)
class Service:
    name: str  # public name: paths, logs, metrics
    package: str  # Django project package (import root)
    directory: str  # folder under the repository root
    database_env: str
    port_env: str
    default_port: int
    internal_url_env: str


SERVICES: tuple[Service, ...] = (
    Service("polls", "polls_service", "polls_service", "POLLS_DATABASE_URL", "POLLS_PORT", 8001, "POLLS_INTERNAL_URL"),
    Service(
        "choices", "choice_service", "choice_service", "CHOICE_DATABASE_URL", "CHOICE_PORT", 8002, "CHOICE_INTERNAL_URL"
    ),
    Service("votes", "vote_service", "vote_service", "VOTE_DATABASE_URL", "VOTE_PORT", 8003, "VOTE_INTERNAL_URL"),
)
GATEWAY_DEFAULT_PORT = 8080
OPERATOR_DEFAULTS = ("operator", "operator-dev-password")


class StackError(RuntimeError):
    """A failure ``up`` reports as one line (unreachable backend, busy port, crashed process...)."""


# --------------------------------------------------------------------------------------------------
# Small helpers (stdlib only: usable before the virtualenv exists)
# --------------------------------------------------------------------------------------------------


def read_dotenv(path: Path = REPO / ".env") -> dict[str, str]:
    """``KEY=VALUE`` lines of ``.env`` (comments and blanks skipped, optional quotes stripped)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def effective_env(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the platform sees: ``.env`` < process environment < explicit overrides."""
    merged = {**read_dotenv(), **os.environ}
    for key, value in (overrides or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """Status code of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local URLs only
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError, ValueError):
        return None


def proc_start_time(pid: int) -> int | None:
    """The kernel start time of ``pid`` (to tell a recycled PID from ours), None when gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def child_pids(pid: int) -> list[int]:
    """PIDs of the direct children of ``pid`` (a web server's workers, Celery's pool, Nginx's workers)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def mask_url(url: str) -> str:
    """A URL without its password, for banners and error lines."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def requirements_hash() -> str:
    digest = hashlib.sha256()
    for path in REQUIREMENT_FILES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_venv(log=print) -> Path:
    """Create ``.venv`` and install the pinned requirements when missing or changed; return its python."""
    python = VENV / "bin" / "python"
    marker = VENV / ".requirements-hash"
    wanted = requirements_hash()
    if python.exists() and marker.is_file() and marker.read_text().strip() == wanted:
        return python
    with file_lock(REPO / ".run" / "venv.lock"):
        if python.exists() and marker.is_file() and marker.read_text().strip() == wanted:
            return python
        if not python.exists():
            log(f"creating virtualenv {VENV}")
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        log("installing pinned requirements (requirements/dev.txt) and servicekit (editable)")
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "-r", str(REPO / "requirements" / "dev.txt")], check=True)
        subprocess.run([*pip, "--no-deps", "-e", str(REPO / "servicekit")], check=True)
        marker.write_text(wanted + "\n")
    return python


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


# --------------------------------------------------------------------------------------------------
# Backends: what a service is configured with, whether it answers, creating local databases
# --------------------------------------------------------------------------------------------------

INTROSPECT = r"""
import json, logging, sys
import django
django.setup()
logging.disable(logging.CRITICAL)
from django.conf import settings
from django.core.management import get_commands
from servicekit.health import run_checks
db = settings.DATABASES["default"]
queues = getattr(settings, "CELERY_WORKER_QUEUES", None)
info = {
    "backends": getattr(settings, "SERVICE_BACKENDS", {}),
    "database": {"engine": db["ENGINE"].rsplit(".", 1)[-1], "name": str(db.get("NAME", "")),
                 "host": db.get("HOST") or "", "port": str(db.get("PORT") or "")},
    "cache": settings.CACHES["default"].get("LOCATION", ""),
    "broker": settings.CELERY_BROKER_URL,
    "queues": list(queues) if queues else None,
    "default_queue": getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery"),
    "ensure_operator": "ensure_operator" in get_commands(),
}
if "--check" in sys.argv:
    info["checks"] = run_checks(("database", "cache", "broker"))
print("INTROSPECT " + json.dumps(info))
"""


def postgres_target(url: str) -> dict[str, str] | None:
    """Connection parts of a postgres URL, or None for other engines."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql", "postgis"):
        return None
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": str(parts.port or 5432),
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or ""),
        "dbname": unquote(parts.path.lstrip("/")),
    }


def ensure_postgres_database(url: str, *, fresh: bool) -> None:
    """Create the database of ``url`` if missing (drop it first when ``fresh``)."""
    import psycopg
    from psycopg import sql

    target = postgres_target(url)
    assert target is not None
    name = target.pop("dbname")
    try:
        conn = psycopg.connect(**target, dbname="postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise StackError(f"PostgreSQL at {target['host']}:{target['port']} is unreachable: {first}") from exc
    with conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# --------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------


@dataclass
class ProcessSpec:
    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    health_url: str | None = None
    ready_marker: str | None = None  # text in the log that says "ready" (Celery workers)


@dataclass
class Running:
    name: str
    pid: int
    start_time: int | None
    log: Path
    command: list[str] = field(default_factory=list)
    popen: subprocess.Popen | None = None

    def alive(self) -> bool:
        if self.popen is not None and self.popen.poll() is not None:
            return bool(group_members(self.pid))
        start = proc_start_time(self.pid)
        if start is not None and (self.start_time is None or start == self.start_time):
            return True
        return bool(group_members(self.pid))

    def leader_alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        start = proc_start_time(self.pid)
        return start is not None and (self.start_time is None or start == self.start_time)

    def as_json(self) -> dict:
        return {"pid": self.pid, "start_time": self.start_time, "log": str(self.log), "command": self.command}


class Stack:
    """The whole platform on one machine: prepare, launch, watch and stop every process."""

    def __init__(
        self,
        run_dir: Path | str | None = None,
        *,
        env: dict[str, str | None] | None = None,
        ports: dict[str, int] | None = None,
        fresh_databases: bool = False,
        web_workers: int | None = None,
        worker_concurrency: int | None = None,
        log=print,
    ):
        self.env = effective_env(env)
        self.run_dir = Path(run_dir or self.env.get("RUN_DIR") or REPO / ".run").resolve()
        self.env["RUN_DIR"] = str(self.run_dir)
        self.ports = {
            **{s.name: int(self.env.get(s.port_env) or s.default_port) for s in SERVICES},
            "gateway": int(self.env.get("GATEWAY_PORT") or GATEWAY_DEFAULT_PORT),
            **(ports or {}),
        }
        self.gateway_host = self.env.get("GATEWAY_HOST") or "127.0.0.1"
        self.fresh_databases = fresh_databases
        self.web_workers = web_workers
        self.worker_concurrency = worker_concurrency or int(self.env.get("CELERY_WORKER_CONCURRENCY") or 2)
        self.log = log
        self.info: dict[str, dict] = {}
        self.processes: dict[str, Running] = {}
        # Tests restart processes from helper threads (chaos): state changes are serialised.
        self._lock = threading.RLock()
        self.python = str(VENV / "bin" / "python")
        self.logs_dir = self.run_dir / "logs"
        self.state_file = self.run_dir / "stack.json"
        # Services find each other on this stack's ports (unless the caller says otherwise explicitly).
        explicit = env or {}
        for service in SERVICES:
            if service.internal_url_env not in explicit:
                self.env[service.internal_url_env] = f"http://127.0.0.1:{self.ports[service.name]}"
        if "JWKS_URL" not in explicit:
            self.env["JWKS_URL"] = f"http://127.0.0.1:{self.ports['polls']}/.well-known/jwks.json"
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        if web_workers:
            self.env["WEB_WORKERS"] = str(web_workers)

    # ----- URLs -----------------------------------------------------------------------------------
    @property
    def gateway_url(self) -> str:
        host = "127.0.0.1" if self.gateway_host in ("0.0.0.0", "::") else self.gateway_host
        return f"http://{host}:{self.ports['gateway']}"

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    # ----- state file ---------------------------------------------------------------------------------
    def read_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def write_state(self, supervisor_pid: int | None = None) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            state = {
                "supervisor_pid": supervisor_pid,
                "supervisor_start_time": proc_start_time(supervisor_pid) if supervisor_pid else None,
                "ports": self.ports,
                "gateway_url": self.gateway_url,
                "processes": {name: proc.as_json() for name, proc in self.processes.items()},
            }
            tmp = self.state_file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(state, indent=2))
            tmp.replace(self.state_file)

    def supervisor_alive(self) -> bool:
        """Whether the process that owns the recorded stack (foreground `up`, a test session) still runs."""
        state = self.read_state()
        pid = state.get("supervisor_pid")
        return bool(pid) and proc_start_time(pid) == state.get("supervisor_start_time")

    def recorded_processes(self) -> dict[str, Running]:
        """Processes recorded in ``stack.json`` by this or another ``up`` (may be dead)."""
        state = self.read_state()
        return {
            name: Running(name, int(p["pid"]), p.get("start_time"), Path(p.get("log", "")), p.get("command", []))
            for name, p in state.get("processes", {}).items()
        }

    def running_elsewhere(self) -> list[str]:
        """Names of recorded processes that are still alive (a running ``up``)."""
        return [name for name, proc in self.recorded_processes().items() if proc.alive()]

    # ----- preparation --------------------------------------------------------------------------
    def service_env(self, service: Service) -> dict[str, str]:
        env = dict(self.env)
        env["DJANGO_SETTINGS_MODULE"] = f"{service.package}.settings"
        env["WEB_BIND"] = f"127.0.0.1:{self.ports[service.name]}"
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.run_dir / "prometheus" / service.name)
        env["PATH"] = f"{VENV / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def service(self, name: str) -> Service:
        """The ``Service`` called ``name`` ("polls", "choices", "votes")."""
        return next(s for s in SERVICES if s.name == name)

    def manage(
        self, service: Service | str, *args: str, check: bool = True, extra_env: dict | None = None
    ) -> subprocess.CompletedProcess:
        if isinstance(service, str):
            service = self.service(service)
        result = subprocess.run(
            [self.python, "manage.py", *args],
            cwd=REPO / service.directory,
            env={**self.service_env(service), **(extra_env or {})},
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-15:]
            raise StackError(f"{service.name}: manage.py {' '.join(args)} failed:\n  " + "\n  ".join(tail))
        return result

    def introspect(self, service: Service, *, check: bool) -> dict:
        result = subprocess.run(
            [self.python, "-c", INTROSPECT, *(["--check"] if check else [])],
            cwd=REPO / service.directory,
            env=self.service_env(service),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        for line in result.stdout.splitlines():
            if line.startswith("INTROSPECT "):
                return json.loads(line.removeprefix("INTROSPECT "))
        tail = (result.stderr or result.stdout).strip().splitlines()[-8:]
        raise StackError(f"{service.name}: settings do not load:\n  " + "\n  ".join(tail))

    def ensure_local_servers(self) -> None:
        """Start PostgreSQL/Redis/RabbitMQ on this machine when a configured URL points here."""
        wanted: list[str] = []
        for service in SERVICES:
            target = postgres_target(self.env.get(service.database_env, ""))
            if target and target["host"] in LOCAL_HOSTS and "postgres" not in wanted:
                wanted.append("postgres")
        redis = urlsplit(self.env.get("REDIS_URL", ""))
        if redis.scheme.startswith("redis") and (redis.hostname or "") in LOCAL_HOSTS:
            wanted.append("redis")
        broker = urlsplit(self.env.get("BROKER_URL", ""))
        if broker.scheme in ("amqp", "pyamqp", "amqps") and (broker.hostname or "") in LOCAL_HOSTS:
            wanted.append("rabbitmq")
        wanted.append("nginx")
        result = subprocess.run(
            ["bash", str(REPO / "scripts" / "infra.sh"), *wanted], capture_output=True, text=True, check=False
        )
        for line in result.stdout.splitlines():
            self.log(line)
        if result.returncode != 0:
            raise StackError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "infra.sh failed")

    def ensure_rabbitmq_vhost(self, *, fresh: bool = False) -> None:
        """Create the broker URL's vhost on a local RabbitMQ when missing (needs rabbitmqctl).

        ``fresh`` deletes it first, so no queue declared by an earlier run (with other arguments)
        survives into this one: the test stack starts from an empty broker as from empty databases.
        """
        broker = urlsplit(self.env.get("BROKER_URL", ""))
        if broker.scheme not in ("amqp", "pyamqp") or (broker.hostname or "") not in LOCAL_HOSTS:
            return
        vhost = unquote(broker.path[1:]) if broker.path not in ("", "/") else "/"
        if vhost == "/" or not shutil.which("rabbitmqctl"):
            return
        listed = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, text=True, check=False)
        if vhost in listed.stdout.split():
            if not fresh:
                return
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, check=False)
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], capture_output=True, check=False)
        user = unquote(broker.username or "guest")
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
            capture_output=True,
            check=False,
        )

    def prepare(self) -> None:
        """Everything before launching: secrets, servers, reachability, migrations, static, operator."""
        started = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        sys.path.insert(0, str(REPO / "scripts"))
        from devsecrets import ensure_dev_secrets

        created = ensure_dev_secrets(self.run_dir)
        if created:
            self.log(f"generated dev secrets in {self.run_dir / 'secrets'}: {', '.join(created)}")
        self.ensure_local_servers()
        self.ensure_rabbitmq_vhost(fresh=self.fresh_databases)
        self.build_client()
        for service in SERVICES:
            url = self.env.get(service.database_env, "")
            target = postgres_target(url)
            if target and (self.fresh_databases or target["host"] in LOCAL_HOSTS):
                try:
                    ensure_postgres_database(url, fresh=self.fresh_databases)
                except StackError as exc:
                    raise StackError(f"{service.name}: database unreachable ({mask_url(url)}): {exc}") from exc

        # Reachability of every configured backend, before anything is migrated.
        infos = self._parallel(lambda s: self.introspect(s, check=True))
        for service in SERVICES:
            info = infos[service.name]
            for check, result in info["checks"].items():
                if result != "ok":
                    raise StackError(f"{service.name}: {check} unreachable ({self.describe_target(info, check)})")
        self.info = infos

        def migrate_and_collect(service: Service) -> None:
            self.manage(service, "migrate", "--noinput")
            self.manage(service, "collectstatic", "--noinput", "--clear")
            if infos[service.name]["ensure_operator"]:
                self.manage(service, "ensure_operator")

        self._parallel(migrate_and_collect)
        self.log(f"prepared (secrets, migrations, static files) in {time.monotonic() - started:.1f} s")

    def build_client(self) -> None:
        """Build the browser client (``web/build.py`` -> ``web/dist``) when its build script exists."""
        build = REPO / "web" / "build.py"
        if not build.is_file():
            return
        with file_lock(REPO / ".run" / "web-build.lock"):
            result = subprocess.run([self.python, str(build)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise StackError("web client build failed:\n  " + "\n  ".join(tail))

    @staticmethod
    def describe_target(info: dict, check: str) -> str:
        if check == "database":
            db = info["database"]
            if db["engine"] == "sqlite3":
                return f"sqlite {db['name']}"
            return f"{db['engine']} {db['host'] or '127.0.0.1'}:{db['port'] or 5432}/{db['name']}"
        if check == "cache":
            return mask_url(str(info["cache"]))
        return mask_url(str(info["broker"]))

    def _parallel(self, func) -> dict:
        results: dict = {}
        errors: list[BaseException] = []

        def run(service: Service) -> None:
            try:
                results[service.name] = func(service)
            except BaseException as exc:  # re-raised below in the caller's thread
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(s,)) for s in SERVICES]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results

    # ----- process specs ------------------------------------------------------------------------------
    def worker_queues(self, service: Service) -> list[str]:
        info = self.info.get(service.name) or {}
        if info.get("queues"):
            return list(info["queues"])
        return [info.get("default_queue") or f"{service.name}.default", f"{service.name}.events"]

    def specs(self) -> dict[str, ProcessSpec]:
        specs: dict[str, ProcessSpec] = {}
        bin_dir = VENV / "bin"
        for service in SERVICES:
            env = self.service_env(service)
            cwd = REPO / service.directory
            specs[f"{service.name}.web"] = ProcessSpec(
                f"{service.name}.web",
                [str(bin_dir / "python"), "-m", "servicekit.server", f"{service.package}.wsgi:application"],
                cwd,
                env,
                health_url=f"{self.service_url(service.name)}/healthz",
            )
            specs[f"{service.name}.worker"] = ProcessSpec(
                f"{service.name}.worker",
                [
                    str(bin_dir / "celery"),
                    "-A",
                    service.package,
                    "--quiet",  # no plain-text banner: every line of the log is ECS JSON (servicekit.logging)
                    "worker",
                    "-Q",
                    ",".join(self.worker_queues(service)),
                    "--concurrency",
                    str(self.worker_concurrency),
                    "-n",
                    f"{service.name}-{self.ports['gateway']}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                ],
                cwd,
                env,
                ready_marker=" ready.",
            )
            specs[f"{service.name}.beat"] = ProcessSpec(
                f"{service.name}.beat",
                [
                    str(bin_dir / "celery"),
                    "-A",
                    service.package,
                    "--quiet",  # no plain-text banner: every line of the log is ECS JSON (servicekit.logging)
                    "beat",
                    "-s",
                    str(self.run_dir / f"celerybeat-{service.name}"),
                    "--loglevel",
                    "INFO",
                ],
                cwd,
                env,
            )
        conf = self.write_gateway_config()
        import gateway  # scripts/ is on sys.path now

        specs["gateway"] = ProcessSpec(
            "gateway", gateway.local_command(conf), REPO, dict(self.env), health_url=f"{self.gateway_url}/healthz"
        )
        return specs

    def write_gateway_config(self, weights: dict[str, dict[int, int]] | None = None) -> Path:
        """Render the gateway's config for this stack's ports (``weights``: several weighted instances of a
        service, as in a release) and check it with ``nginx -t``; returns its path."""
        sys.path.insert(0, str(REPO / "scripts"))
        import gateway

        conf = gateway.write_local(
            run_dir=self.run_dir,
            port=self.ports["gateway"],
            polls=self.ports["polls"],
            choices=self.ports["choices"],
            votes=self.ports["votes"],
            host=self.gateway_host,
            weights=weights,
            trace_sample_percent=float(
                self.env.get("GATEWAY_TRACE_SAMPLE_PERCENT") or gateway.DEFAULT_TRACE_SAMPLE_PERCENT
            ),
        )
        checked = gateway.check(conf)
        if checked.returncode != 0:
            raise StackError(f"gateway: nginx -t failed: {checked.stderr.strip()}")
        return conf

    # ----- launching -----------------------------------------------------------------------------------
    def launch(self, spec: ProcessSpec) -> Running:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.logs_dir / f"{spec.name}.log"
        with open(log_path, "ab") as log_file:
            log_file.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {spec.name}\n".encode())
            log_file.flush()
            popen = subprocess.Popen(
                spec.command,
                cwd=spec.cwd,
                env=spec.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole, never by name
            )
        running = Running(spec.name, popen.pid, proc_start_time(popen.pid), log_path, spec.command, popen)
        self.processes[spec.name] = running
        return running

    def check_ports_free(self) -> None:
        names = {**{s.name: s.port_env for s in SERVICES}, "gateway": "GATEWAY_PORT"}
        for name, port in self.ports.items():
            if port_open(port):
                raise StackError(f"port {port} ({name}) is already in use by another program; set {names[name]}")

    def start(self, *, supervisor_pid: int | None = None, wait_timeout: float = 90.0) -> Stack:
        """Prepare, launch every process and wait until all answer; on failure stop what was started."""
        with file_lock(self.run_dir / "stack.lock"):
            alive = self.running_elsewhere()
            if alive:
                raise AlreadyRunning(self)
            self.check_ports_free()
            self.prepare()
            specs = self.specs()
            for service in SERVICES:
                metrics_dir = self.run_dir / "prometheus" / service.name
                shutil.rmtree(metrics_dir, ignore_errors=True)
                metrics_dir.mkdir(parents=True)
            self._specs = specs
            try:
                for spec in specs.values():
                    self.launch(spec)
                self.write_state(supervisor_pid)
                self.wait_healthy(wait_timeout)
            except BaseException:
                self.stop()
                raise
        return self

    def wait_healthy(self, timeout: float = 90.0, names: list[str] | None = None) -> None:
        """Wait until every web process and the gateway answer /healthz and workers say they are ready."""
        specs = {n: s for n, s in self._specs.items() if names is None or n in names}
        pending = {n for n, s in specs.items() if s.health_url or s.ready_marker}
        deadline = time.monotonic() + timeout
        while pending:
            for name in sorted(pending):
                proc = self.processes[name]
                if not proc.leader_alive():
                    raise StackError(f"{name} exited during start-up; last lines of {proc.log}:\n" + self.tail(name))
                spec = specs[name]
                healthy = bool(spec.health_url) and http_status(spec.health_url, timeout=1.0) == 200
                ready = bool(spec.ready_marker) and spec.ready_marker in self._log_since_start(proc)
                if healthy or ready:
                    pending.discard(name)
            for name, proc in self.processes.items():
                if (names is None or name in names) and not proc.leader_alive():
                    raise StackError(f"{name} exited during start-up; last lines of {proc.log}:\n" + self.tail(name))
            if not pending:
                break
            if time.monotonic() > deadline:
                raise StackError(f"not healthy after {timeout:.0f} s: {', '.join(sorted(pending))}")
            time.sleep(0.25)

    @staticmethod
    def _log_since_start(proc: Running) -> str:
        try:
            text = proc.log.read_text(errors="replace")
        except OSError:
            return ""
        return text[text.rfind(f"starting {proc.name}") :]

    def tail(self, name: str, lines: int = 20) -> str:
        proc = self.processes.get(name) or self.recorded_processes().get(name)
        if proc is None:
            return ""
        try:
            text = self._log_since_start(proc)
        except OSError:
            return ""
        return "\n".join("  " + line for line in text.splitlines()[-lines:])

    # ----- stopping ------------------------------------------------------------------------------------
    def stop(self, timeout: float = 25.0) -> list[str]:
        """Stop every process of this stack (own handles and ``stack.json``); return names still alive (none)."""
        with self._lock:
            procs = {**self.recorded_processes(), **self.processes}
        leftovers = stop_processes(list(procs.values()), timeout=timeout)
        with self._lock:
            self.processes.clear()
        if not leftovers:
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()
        return leftovers

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (default SIGKILL) to the whole process group of ``name`` and reap it."""
        proc = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            deadline = time.monotonic() + 30
            while proc.alive() and time.monotonic() < deadline:
                time.sleep(0.05)

    def stop_process(self, name: str, timeout: float = 25.0) -> None:
        """Gracefully stop one process (SIGTERM, then SIGKILL after ``timeout``)."""
        stop_processes([self.processes[name]], timeout=timeout)

    def start_process(self, name: str, wait: bool = True, timeout: float = 60.0) -> Running:
        """(Re)start one process by name after it was killed or stopped; wait until it is healthy."""
        with self._lock:
            if name in self.processes and self.processes[name].alive():
                raise StackError(f"{name} is still running")
            running = self.launch(self._specs[name])
            self.write_state(self.read_state().get("supervisor_pid"))
        if wait:
            self.wait_healthy(timeout, names=[name])
        return running

    def revive(self, names: Iterable[str]) -> list[str]:
        """Start again each named process that exited (a crashed worker, a killed beat); returns those started.

        What systemd, Kubernetes or honcho do in production; the foreground ``up`` and the fault tests
        both rely on it. A process stopped on purpose through ``stop()`` is not in ``processes`` any more.
        """
        revived = []
        for name in names:
            proc = self.processes.get(name)
            if proc is not None and not proc.alive():
                self.start_process(name, wait=False)
                revived.append(name)
        return revived

    def restart(self, name: str, timeout: float = 60.0) -> Running:
        self.stop_process(name)
        return self.start_process(name, timeout=timeout)

    # ----- reporting ------------------------------------------------------------------------------------
    def banner(self) -> str:
        g = self.gateway_url
        user = self.env.get("OPERATOR_USERNAME") or OPERATOR_DEFAULTS[0]
        password = self.env.get("OPERATOR_PASSWORD") or OPERATOR_DEFAULTS[1]
        lines = [f"Polls Platform is up (RUN_DIR={self.run_dir})", "  backends:"]
        for service in SERVICES:
            info = self.info.get(service.name, {})
            b = info.get("backends", {})
            db = info.get("database", {})
            lines.append(
                f"    {service.name:<8} database {b.get('database', '?')} ({db.get('name', '')}), "
                f"cache {b.get('cache', '?')}, broker {b.get('broker', '?')}, "
                f"worker queues {','.join(self.worker_queues(service))}"
            )
        operator_note = "" if any(i.get("ensure_operator") for i in self.info.values()) else " (no ensure_operator yet)"
        lines += [
            f"  client      {g}/",
            f"  API docs    {g}/api/docs/",
            f"  entry point {g}/api/v3/",
            f"  admins      {g}/admin/polls/  {g}/admin/choices/  {g}/admin/votes/",
            f"  gateway     {g}/healthz",
            "  services    "
            + "  ".join(f"{s.name} {self.service_url(s.name)}" for s in SERVICES)
            + "   (/healthz /readyz /metrics)",
            f"  operator    {user} / {password}{operator_note}",
            f"  logs        {self.logs_dir}/*.log  (make logs)      stop: make down (or Ctrl-C in the foreground)",
        ]
        return "\n".join(lines)

    def status_lines(self) -> list[str]:
        procs = self.recorded_processes()
        if not procs:
            return ["not running (no stack.json in " + str(self.run_dir) + ")"]
        state = self.read_state()
        lines = []
        for name, proc in procs.items():
            up = proc.alive()
            health = ""
            if name == "gateway":
                code = http_status(f"{state.get('gateway_url', self.gateway_url)}/healthz", 1.0)
                health = f"/healthz {code}" if code else "/healthz no answer"
            elif name.endswith(".web"):
                port = state.get("ports", self.ports).get(name.split(".")[0])
                code = http_status(f"http://127.0.0.1:{port}/healthz", 1.0)
                health = f"/healthz {code}" if code else "/healthz no answer"
            lines.append(f"{name:<16} pid {proc.pid:<8} {'running' if up else 'STOPPED':<8} {health}")
        return lines


class AlreadyRunning(StackError):
    def __init__(self, stack: Stack):
        state = stack.read_state()
        url = state.get("gateway_url", stack.gateway_url)
        super().__init__(
            f"the platform is already running from {stack.run_dir} (gateway {url}); "
            "`make down` stops it, `make status` shows it"
        )


def stop_processes(procs: list[Running], timeout: float = 25.0) -> list[str]:
    """SIGTERM each process group leader, wait, then SIGTERM/SIGKILL whatever is left of each group."""
    live = [p for p in procs if p.alive()]
    for proc in live:
        if proc.leader_alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(p.leader_alive() for p in live):
        time.sleep(0.1)
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        remaining = [p for p in live if p.alive()]
        if not remaining:
            break
        for proc in remaining:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(p.alive() for p in remaining):
            time.sleep(0.1)
    for proc in live:
        if proc.popen is not None:
            with contextlib.suppress(Exception):
                proc.popen.wait(timeout=1)
    return [p.name for p in live if p.alive()]


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------

COLORS = ["36", "32", "33", "35", "34", "96", "92", "93", "95", "94"]


def follow_logs(stack: Stack, names: list[str], stop_event: threading.Event, from_end: bool = True) -> None:
    """Print new lines of each process's log with a coloured ``name |`` prefix until ``stop_event``."""
    width = max(len(n) for n in names)
    tty = sys.stdout.isatty()
    lock = threading.Lock()

    def follow(index: int, name: str) -> None:
        path = stack.logs_dir / f"{name}.log"
        prefix = f"{name:<{width}} | "
        if tty:
            prefix = f"\033[{COLORS[index % len(COLORS)]}m{prefix}\033[0m"
        while not path.exists() and not stop_event.is_set():
            time.sleep(0.2)
        with open(path, errors="replace") as handle:
            if from_end:
                handle.seek(0, os.SEEK_END)
            buffer = ""
            while not stop_event.is_set():
                chunk = handle.readline()
                if not chunk:
                    time.sleep(0.2)
                    continue
                buffer += chunk
                if buffer.endswith("\n"):
                    with lock:
                        sys.stdout.write(prefix + buffer)
                        sys.stdout.flush()
                    buffer = ""

    for i, name in enumerate(names):
        threading.Thread(target=follow, args=(i, name), daemon=True).start()


def cmd_up(stack: Stack, detach: bool) -> int:
    if stack.running_elsewhere():
        print(f"stack: {AlreadyRunning(stack)}")
        return 0
    stop_event = threading.Event()
    received: list[int] = []

    def on_signal(signum, frame):  # noqa: ARG001
        received.append(signum)
        stop_event.set()

    if not detach:
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start(supervisor_pid=None if detach else os.getpid())
    except AlreadyRunning as exc:
        print(f"stack: {exc}")
        return 0
    except StackError as exc:
        print(f"stack: ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        stack.stop()
        return 130
    if detach:
        print(stack.banner(), flush=True)
        return 0

    names = list(stack.processes)
    # Show the end of what each process logged during start-up, the banner last so it stays visible,
    # then follow every log.
    for name in names:
        text = stack._log_since_start(stack.processes[name]).splitlines()[1:][-3:]
        for line in text:
            print(f"{name} | {line}")
    print(stack.banner(), flush=True)
    follow_logs(stack, names, stop_event)
    # A process that exits is started again after a back-off (1 s, doubling up to 60 s) so one that
    # cannot start does not spin; the back-off resets once a restarted process stayed up for a minute.
    delay: dict[str, float] = {}
    restart_at: dict[str, float] = {}
    last_start: dict[str, float] = {}
    while not stop_event.wait(0.5):
        now = time.monotonic()
        for name, proc in list(stack.processes.items()):
            if proc.alive():
                if name in delay and now - last_start.get(name, now) > 60:
                    del delay[name]
            elif name not in restart_at:
                delay[name] = min(delay.get(name, 0.5) * 2, 60.0)
                restart_at[name] = now + delay[name]
                code = proc.popen.returncode if proc.popen else "?"
                print(f"stack: {name} exited (code {code}); restarting it in {delay[name]:.0f} s.", flush=True)
            elif now >= restart_at[name]:
                del restart_at[name]
                last_start[name] = now
                try:
                    stack.revive([name])
                    print(f"stack: {name} restarted.", flush=True)
                except StackError as exc:
                    print(f"stack: could not restart {name}: {exc}", flush=True)
    print("\nstack: stopping every process ...", flush=True)
    leftovers = stack.stop()
    if leftovers:
        print(f"stack: ERROR: still alive after stop: {', '.join(leftovers)}", file=sys.stderr)
        return 1
    print("stack: stopped.")
    return 0


def cmd_down(stack: Stack) -> int:
    state = stack.read_state()
    supervisor = state.get("supervisor_pid")
    if supervisor and supervisor != os.getpid() and proc_start_time(supervisor) == state.get("supervisor_start_time"):
        # A foreground `up` is supervising: ask it to stop its children, then make sure.
        with contextlib.suppress(ProcessLookupError):
            os.kill(supervisor, signal.SIGTERM)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and proc_start_time(supervisor) is not None:
            time.sleep(0.2)
    procs = {name: p for name, p in stack.recorded_processes().items() if p.alive()}
    if not procs:
        stack.stop()  # forget a stale stack.json
        print(f"stack: stopped the foreground `up` (pid {supervisor})" if supervisor else "stack: nothing running")
        return 0
    leftovers = stack.stop()
    if leftovers:
        print(f"stack: ERROR: could not stop {', '.join(leftovers)}", file=sys.stderr)
        return 1
    print(f"stack: stopped {len(procs)} processes ({', '.join(procs)}).")
    return 0


def cmd_logs(stack: Stack) -> int:
    names = list(stack.recorded_processes()) or sorted(p.stem for p in stack.logs_dir.glob("*.log"))
    if not names:
        print(f"stack: no logs in {stack.logs_dir}")
        return 1
    for name in names:
        print(f"{name} | ...")
        print(stack.tail(name, 10))
    stop_event = threading.Event()
    follow_logs(stack, names, stop_event)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        stop_event.set()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description="Polls Platform process supervisor (make up / down / status / logs)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the platform (foreground unless --detach)")
    up.add_argument("--detach", action="store_true", help="return once everything is healthy")
    sub.add_parser("down", help="stop everything `up` started")
    sub.add_parser("status", help="show processes and health")
    sub.add_parser("logs", help="follow every process's log")
    sub.add_parser("venv", help="create/update the virtualenv only")
    for p in sub.choices.values():
        p.add_argument("--run-dir", type=Path, default=None, help="state folder (default $RUN_DIR or .run)")
    args = parser.parse_args(argv)

    if args.command in ("up", "venv") and not in_venv():
        python = ensure_venv(log=lambda m: print(f"stack: {m}", flush=True))
        if args.command == "venv":
            return 0
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *argv])
    if args.command == "venv":
        ensure_venv(log=lambda m: print(f"stack: {m}", flush=True))
        return 0

    stack = Stack(args.run_dir, log=lambda m: print(f"stack: {m}", flush=True))
    if args.command == "up":
        return cmd_up(stack, args.detach)
    if args.command == "down":
        return cmd_down(stack)
    if args.command == "status":
        for line in stack.status_lines():
            print(line)
        return 0
    return cmd_logs(stack)


if __name__ == "__main__":
    sys.exit(main())
