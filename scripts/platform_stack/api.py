"""``Stack``: the whole platform on one machine, as ``make up`` and the cross-service tests drive it.

    from scripts.platform_stack import Stack
    stack = Stack(run_dir, ports={"polls": 18001, "choices": 18002, "votes": 18003, "gateway": 18080},
                  env={"POLLS_DATABASE_URL": "postgres://...", ...}, fresh_databases=True)
    stack.start()                      # prepare + launch + wait healthy
    stack.kill("votes.worker")         # SIGKILL one process group (chaos)
    stack.start_process("votes.worker")
    stack.revive(["votes.web.2"])      # start again what exited (what the foreground `up` does by itself)
    stack.restart("gateway")
    stack.stop()                       # everything, nothing left behind

The steps live beside it: ``prepare`` (before launching), ``specs`` (what runs), ``supervise``
(process groups, PIDs, logs). ``RUN_DIR/stack.json`` records the PIDs so another process
(``make down``, ``make status``) finds them.

Replicas: each service runs ``replicas[service]`` web instances (``SERVICE_REPLICAS``, per service
``POLLS_REPLICAS``/``CHOICE_REPLICAS``/``VOTE_REPLICAS``, else ``default_replicas``: 1 here, 2 for
``make up``); instance n listens on the service's port + 20·(n−1) and is called ``votes.web`` (n = 1)
or ``votes.web.<n>``. Celery workers and beat stay one per service.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path

from . import prepare, specs, supervise
from .common import (
    GATEWAY_DEFAULT_PORT,
    OPERATOR_DEFAULTS,
    REPO,
    SERVICES,
    VENV,
    Service,
    StackError,
    effective_env,
    file_lock,
    http_status,
    instance_port,
    parse_web_process_name,
    port_open,
    web_process_name,
)
from .specs import ProcessSpec
from .supervise import Running, proc_start_time, stop_processes


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
        replicas: dict[str, int] | None = None,
        default_replicas: int = 1,
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
        self.replicas = {s.name: self._replica_count(s, replicas or {}, default_replicas) for s in SERVICES}
        self.gateway_host = self.env.get("GATEWAY_HOST") or "127.0.0.1"
        # HTTPS beside HTTP: 8443 for `make up` (8080 + 363), likewise beside a test stack's gateway port.
        self.gateway_tls_port = int(self.env.get("GATEWAY_TLS_PORT") or self.ports["gateway"] + 363)
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

    @property
    def gateway_https_url(self) -> str:
        """The gateway over HTTPS (TLS 1.3, HTTP/2); clients trust ``RUN_DIR/secrets/dev-ca.pem`` in development."""
        return self.gateway_url.replace("http://", "https://", 1).rsplit(":", 1)[0] + f":{self.gateway_tls_port}"

    def service_url(self, name: str, instance: int = 1) -> str:
        """The address of one web instance of service ``name`` (the first unless ``instance`` says otherwise)."""
        return f"http://127.0.0.1:{instance_port(self.ports[name], instance)}"

    # ----- replicas -------------------------------------------------------------------------------------
    def _replica_count(self, service: Service, explicit: dict[str, int], default: int) -> int:
        raw = explicit.get(service.name) or self.env.get(service.replicas_env) or self.env.get("SERVICE_REPLICAS")
        try:
            count = int(raw or default)
        except ValueError:
            count = 0
        if not 1 <= count <= 9:  # a handful per service on one machine; ports up to the service port + 160
            raise StackError(f"{service.replicas_env}/SERVICE_REPLICAS must be a whole number from 1 to 9, not {raw!r}")
        return count

    def web_instances(self, name: str) -> dict[str, int]:
        """The web instances of service ``name``: process name -> port, instance 1 first."""
        return {
            web_process_name(name, n): instance_port(self.ports[name], n) for n in range(1, self.replicas[name] + 1)
        }

    def web_ports(self, name: str) -> list[int]:
        return list(self.web_instances(name).values())

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
                "replicas": self.replicas,
                "gateway_url": self.gateway_url,
                "gateway_https_url": self.gateway_https_url,
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

    # ----- services -------------------------------------------------------------------------------------
    def service(self, name: str) -> Service:
        """The ``Service`` called ``name`` ("polls", "choices", "votes")."""
        return next(s for s in SERVICES if s.name == name)

    def service_env(self, service: Service, instance: int = 1) -> dict[str, str]:
        """The environment of a service's processes; ``instance`` picks the web instance's port and metrics."""
        env = dict(self.env)
        env["DJANGO_SETTINGS_MODULE"] = f"{service.package}.settings"
        env["WEB_BIND"] = f"127.0.0.1:{instance_port(self.ports[service.name], instance)}"
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir(service.name, instance))
        env["PATH"] = f"{VENV / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def metrics_dir(self, name: str, instance: int = 1) -> Path:
        """Each web instance its own Prometheus multiprocess folder: its /metrics counts its own requests."""
        return self.run_dir / "prometheus" / (name if instance == 1 else f"{name}.{instance}")

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
        return prepare.introspect(self.python, service, self.service_env(service), check=check)

    def worker_queues(self, service: Service) -> list[str]:
        return specs.worker_queues(self.info.get(service.name) or {}, service)

    # ----- preparation and process specs (prepare.py, specs.py) -----------------------------------------
    def prepare(self) -> None:
        """Everything before launching: secrets, servers, reachability, migrations, static, operator."""
        prepare.prepare(self)

    def specs(self) -> dict[str, ProcessSpec]:
        return specs.process_specs(self)

    def write_gateway_config(self, weights: dict[str, dict[int, int]] | None = None) -> Path:
        """Render and check the gateway's config for this stack's ports (``weights``: as in a release)."""
        return specs.write_gateway_config(self, weights)

    # ----- launching -----------------------------------------------------------------------------------
    def launch(self, spec: ProcessSpec) -> Running:
        running = supervise.launch(spec, self.logs_dir)
        self.processes[spec.name] = running
        return running

    def check_ports_free(self) -> None:
        names = {**{s.name: s.port_env for s in SERVICES}, "gateway": "GATEWAY_PORT"}
        for name, port in self.ports.items():
            if port_open(port):
                raise StackError(f"port {port} ({name}) is already in use by another program; set {names[name]}")
        for service in SERVICES:
            for process, port in list(self.web_instances(service.name).items())[1:]:
                if port_open(port):
                    raise StackError(
                        f"port {port} ({process}) is already in use; set {service.port_env} or {service.replicas_env}"
                    )
        if port_open(self.gateway_tls_port):
            raise StackError(f"port {self.gateway_tls_port} (gateway HTTPS) is already in use; set GATEWAY_TLS_PORT")

    def reset_metrics_dirs(self) -> None:
        for service in SERVICES:
            for n in range(1, self.replicas[service.name] + 1):
                metrics_dir = self.metrics_dir(service.name, n)
                shutil.rmtree(metrics_dir, ignore_errors=True)
                metrics_dir.mkdir(parents=True)

    def start(self, *, supervisor_pid: int | None = None, wait_timeout: float = 90.0) -> Stack:
        """Prepare, launch every process and wait until all answer; on failure stop what was started."""
        with file_lock(self.run_dir / "stack.lock"):
            if self.running_elsewhere():
                raise AlreadyRunning(self)
            self.check_ports_free()
            self.prepare()
            self._specs = self.specs()
            self.reset_metrics_dirs()
            try:
                for spec in self._specs.values():
                    self.launch(spec)
                self.write_state(supervisor_pid)
                self.wait_healthy(wait_timeout)
            except BaseException:
                self.stop()
                raise
        return self

    def wait_healthy(self, timeout: float = 90.0, names: list[str] | None = None) -> None:
        """Wait until every web process and the gateway answer /healthz and workers say they are ready."""
        supervise.wait_healthy(self._specs, self.processes, timeout, names)

    def tail(self, name: str, lines: int = 20) -> str:
        proc = self.processes.get(name) or self.recorded_processes().get(name)
        return "" if proc is None else supervise.tail(proc, lines)

    # ----- stopping and restarting ---------------------------------------------------------------------
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
        supervise.kill_group(self.processes[name], sig)

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
            f"  HTTPS       {self.gateway_https_url}/  (TLS 1.3, HTTP/2) {self._trust_note()}",
            "  services    "
            + "  ".join(f"{s.name} {self.service_url(s.name)}" for s in SERVICES)
            + "   (/healthz /readyz /metrics)",
            "  replicas    "
            + "  ".join(f"{s.name} x{self.replicas[s.name]} ({self._ports_text(s.name)})" for s in SERVICES)
            + "   (SERVICE_REPLICAS, POLLS_/CHOICE_/VOTE_REPLICAS)",
            f"  operator    {user} / {password}{operator_note}",
            f"  logs        {self.logs_dir}/*.log  (make logs)      stop: make down (or Ctrl-C in the foreground)",
        ]
        return "\n".join(lines)

    def _ports_text(self, name: str) -> str:
        return "port " + ", ".join(map(str, self.web_ports(name)))

    def _trust_note(self) -> str:
        if self.env.get("GATEWAY_TLS_CERT_FILE"):
            return f"certificate {self.env['GATEWAY_TLS_CERT_FILE']}"
        return f"trust the dev CA: curl --cacert {self.run_dir / 'secrets' / 'dev-ca.pem'} (README, HTTPS)"

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
            elif web := parse_web_process_name(name):
                service, instance = web
                port = instance_port(state.get("ports", self.ports)[service], instance)
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
