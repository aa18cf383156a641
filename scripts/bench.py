"""The benchmark behind ``make bench`` (see scripts/bench.sh and docs/performance.md).

In one window, interleaved so that both see the same machine:

- the platform: ``POST /api/v1/votes/`` through the gateway, every request from a distinct user (tokens
  minted with the stack's key), on polls whose replicas are warm in vote_service, at 8 and at 64
  connections; ``GET /api/v1/results/{poll}/``; vote_service's own ``GET /healthz``;
- a minimal baseline doing the same durable work (``scripts/bench/baseline_app.py``: Starlette +
  asyncpg under uvicorn, 2 workers: RS256 verify, vote insert + outbox insert in one transaction,
  durable commits, its own database ``bench_baseline``), at 8 and at 64 connections, distinct users;

then, once the vote load stops: how long until every accepted vote is visible in ``/results`` and in
the choices' tallies, and the outbox backlog. Prints a summary against the targets of issue 9 and
writes everything to ``RUN_DIR/bench/results.json``.

    scripts/bench.py                    # the whole benchmark (scripts/bench.sh starts the servers first)
    scripts/bench.py --baseline-only    # only the baseline (also BENCH_ONLY=baseline): no platform needed
    BENCH_ONLY=edge scripts/bench.py    # only the edge-cache runs (scripts/bench/edge_runs.py)

Knobs: BENCH_DURATION (s per run, default 10), BENCH_CONNECTIONS (64), BENCH_LOW_CONNECTIONS (8),
BENCH_THREADS (2), BENCH_POLLS (20), BENCH_ROUNDS (1; 2 alternates the pairs twice and averages),
BENCH_VISIBLE_DEADLINE (30 s), BENCH_PORT_BASE (18500: stack 18501-18503/18580, baseline +90),
BENCH_MAX_VOTE_RATE / BENCH_MAX_BASELINE_RATE (tokens minted per second of load),
BENCH_BASELINE_DATABASE_URL; BENCH_GATEWAY + BENCH_VOTES_URL + BENCH_RUN_DIR (+ BENCH_VOTE_DATABASE_URL)
measure a platform that is already running.
Every server it starts (the bench stack, the baseline's uvicorn) is stopped by PID/process group at
the end, also on Ctrl-C, SIGTERM or an error. Every target is 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "servicekit"))

DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
LOW_CONNECTIONS = int(os.environ.get("BENCH_LOW_CONNECTIONS", "8"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
POLLS = int(os.environ.get("BENCH_POLLS", "20"))
MAX_VOTE_RATE = int(os.environ.get("BENCH_MAX_VOTE_RATE", "1500"))  # platform tokens: rate x duration x 2 runs
MAX_BASELINE_RATE = int(os.environ.get("BENCH_MAX_BASELINE_RATE", "3500"))  # baseline tokens, the same way
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "1")))  # pairs of runs repeated, alternating (averaged)
VISIBLE_DEADLINE = float(os.environ.get("BENCH_VISIBLE_DEADLINE", "30"))
PORT_BASE = int(os.environ.get("BENCH_PORT_BASE", "18500"))
BASELINE_PORT = int(os.environ.get("BENCH_BASELINE_PORT", str(PORT_BASE + 90)))
BASELINE_DB = os.environ.get("BENCH_BASELINE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_baseline")
ISSUER, AUDIENCE = "polls-platform", "polls-platform-api"  # what the platform's tokens carry (servicekit.testing)
LUA = REPO / "scripts" / "bench"

TARGET_RATIO, TARGET_P99_MS, TARGET_VISIBLE_S = 0.5, 50.0, 2.0
# The overload runs (scripts/bench/overload.py, issue 11): BENCH_OVERLOAD=0 skips them; their votes need tokens
# too: a saturation scan of four runs, then 4x and 16x the saturating connections.
OVERLOAD = os.environ.get("BENCH_OVERLOAD", "1") != "0"
OVERLOAD_RUNS = 6
OVERLOAD_RATE = int(os.environ.get("BENCH_OVERLOAD_RATE", "1000")) if OVERLOAD else 0  # per run, requests/s incl. shed


def log(message: str) -> None:
    print(f"bench: {message}", flush=True)


# --------------------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------------------


def wrk(url: str, *, script: Path | None = None, env: dict | None = None, connections: int = CONNECTIONS) -> dict:
    """One bounded wrk run against ``url`` (127.0.0.1 only); req/s, p50/p99 and, with vote.lua, exact status counts."""
    loopback_only(url)
    cmd = ["wrk", f"-t{THREADS}", f"-c{connections}", f"-d{DURATION}s", "--timeout", "10s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    proc = subprocess.run(
        cmd + [url],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=DURATION + 60,
    )
    out = proc.stdout
    if proc.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk {url} failed ({proc.returncode}): {proc.stderr.strip() or out.strip()}")
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": pct.get("50"),
        "p99_ms": pct.get("99"),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
        "connections": connections,
    }
    statuses = re.search(r"^bench-status ?(.*)$", out, re.M)
    if statuses:
        result["status"] = {code: int(n) for code, n in re.findall(r"(\d+)=(\d+)", statuses.group(1))}
        result["accepted"] = result["status"].get("201", 0)
        for key in ("sent", "next-offset", "wrapped"):
            found = re.search(rf"^bench-{key} (\d+)$", out, re.M)
            result[key.replace("-", "_")] = int(found.group(1)) if found else None
        result["cut_in_flight"] = (result["sent"] or 0) - sum(result["status"].values())
    return result


def loopback_only(url: str) -> str:
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"bench: refusing to load {url}: only loopback targets (127.0.0.1)")
    return url


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s|m)", value).groups()
    return round(float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit], 2)


def write_votes_file(path: Path, tokens: list[str], polls: list[tuple[str, list[str]]]) -> None:
    """One line per vote, ``<token> <poll> <choice>``, spread round-robin over the polls and their choices."""
    with open(path, "w") as handle:
        for i, token in enumerate(tokens):
            poll, choices = polls[i % len(polls)]
            handle.write(f"{token} {poll} {choices[(i // len(polls)) % len(choices)]}\n")


def _pool_map(func, chunks):
    with ProcessPoolExecutor(max(min(os.cpu_count() or 2, 4), 2)) as pool:
        return [item for chunk in pool.map(func, chunks) for item in chunk]


# --------------------------------------------------------------------------------------------------
# the machine (shared: say what else ran)
# --------------------------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_times() -> dict[tuple[int, int], tuple[float, str, int]]:
    """(pid, start time) -> (CPU seconds so far, command line, parent pid) for every process."""
    snapshot = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])
        snapshot[(int(entry.name), int(fields[19]))] = (ticks / CLK_TCK, cmdline or f"[{comm}]", int(fields[1]))
    return snapshot


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def ps_top(count: int = 5) -> list[str]:
    out = subprocess.run(
        ["ps", "-eo", "pid,pcpu,etime,args", "--sort=-pcpu", "--no-headers"], capture_output=True, text=True
    ).stdout
    own = {str(os.getpid())}
    lines = [line.strip() for line in out.splitlines()]
    return [line[:140] for line in lines if line.split(" ", 1)[0] not in own and " ps -eo " not in line][:count]


def ours(pid: int, parents: dict[int, int]) -> bool:
    me, seen = os.getpid(), 0
    while pid > 1 and seen < 64:
        if pid == me:
            return True
        pid, seen = parents.get(pid, 0), seen + 1
    return False


def _label(cmd: str) -> str:
    """A process's command, shortened so that the workers of one server share one label."""
    if cmd.startswith("postgres:"):
        parts = cmd.split()
        return f"postgres: backend of {parts[3]}" if len(parts) > 3 and parts[2] == "postgres" else cmd[:60]
    if "multiprocessing.spawn" in cmd or "multiprocessing.forkserver" in cmd:
        return "python multiprocessing child (uvicorn worker / token minting)"
    words = [w.rsplit("/", 1)[-1] if w.startswith("/") else w for w in cmd.split()]
    return " ".join(words)[:90]


def window_cpu(before: dict, after: dict, children_cpu: float, count: int = 8) -> dict:
    """CPU seconds used between two snapshots: by this bench (its process tree), PostgreSQL, everything else."""
    parents = {pid: ppid for (pid, _), (_, _, ppid) in after.items()}
    groups: dict[tuple[str, bool], list] = {}
    totals = {"bench": children_cpu, "postgres": 0.0, "others": 0.0}  # reaped children: the wrk runs
    for key, (cpu, cmd, _) in after.items():
        delta = cpu - before.get(key, (0.0, "", 0))[0]
        if delta <= 0:
            continue
        mine = ours(key[0], parents)
        totals["bench" if mine else "postgres" if cmd.startswith("postgres") else "others"] += delta
        group = groups.setdefault((_label(cmd), mine), [0.0, 0])
        group[0] += delta
        group[1] += 1
    if children_cpu > 0.05:
        groups[("wrk (the load generator, all runs)", True)] = [children_cpu, 1]
    top = sorted(groups.items(), key=lambda item: -item[1][0])[:count]
    return {
        "totals_cpu_s": {k: round(v, 1) for k, v in totals.items()},
        "top": [{"cpu_s": round(c, 1), "processes": n, "bench": mine, "what": label} for (label, mine), (c, n) in top],
    }


def _role(cmd: str) -> str | None:
    """Which part of the platform a process is (None for the bench's own and unrelated processes)."""
    if cmd.startswith("postgres:"):
        return "postgres" if "_bench" in cmd else None
    for service in ("vote", "choice", "polls"):
        if f"{service}_service.wsgi" in cmd or (service == "vote" and "granian" in cmd):
            return f"{service}s web" if service != "polls" else "polls web"
        if f"-A {service}_service worker" in cmd:
            return f"{service}s worker" if service != "polls" else "polls worker"
    if "nginx" in cmd:
        return "gateway"
    if "beam.smp" in cmd:
        return "rabbitmq"
    if "redis-server" in cmd:
        return "redis"
    return None


def _of_bench_stack(pid: int, cmd: str) -> bool:
    """Whether a service or gateway process belongs to the bench's stack (another stack may be running)."""
    if cmd.startswith(("postgres:", "/usr/lib/erlang")) or "beam.smp" in cmd or "redis-server" in cmd:
        return True  # shared servers: counted whole
    try:
        return b"bench-stack" in Path(f"/proc/{pid}/environ").read_bytes() or "bench-stack" in cmd
    except OSError:
        return False


def cpu_per_request(before: dict, after: dict, requests: int) -> dict[str, float]:
    """CPU milliseconds per request of one run, by part of the platform (what a vote costs, and where)."""
    spent: dict[str, float] = {}
    for key, (cpu, cmd, _) in after.items():
        role = _role(cmd)
        delta = cpu - before.get(key, (0.0, "", 0))[0]
        if role and delta > 0 and _of_bench_stack(key[0], cmd):
            spent[role] = spent.get(role, 0.0) + delta
    total = sum(spent.values())
    rows = {role: round(1000 * cpu / requests, 2) for role, cpu in sorted(spent.items(), key=lambda i: -i[1])}
    return {"total": round(1000 * total / requests, 2), **rows}


# --------------------------------------------------------------------------------------------------
# the baseline: scripts/bench/baseline_app.py under uvicorn
# --------------------------------------------------------------------------------------------------


def _rsa_pair(directory: Path) -> tuple[Path, Path]:
    """An RSA 2048 key pair like the platform's (scripts/devsecrets.py), kept under RUN_DIR/bench/baseline."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private, public = directory / "jwt_private.pem", directory / "jwt_public.pem"
    if not (private.is_file() and public.is_file()):
        directory.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        public.write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    return private, public


def _baseline_tokens(args: tuple[str, int, int]) -> list[str]:
    """Access tokens with the platform's claims (servicekit.testing.token_claims), signed RS256 with PyJWT."""
    import jwt
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    path, first, count = args
    key = load_pem_private_key(Path(path).read_bytes(), password=None)
    now = int(time.time())
    return [
        jwt.encode(
            {
                "iss": ISSUER,
                "aud": AUDIENCE,
                "iat": now,
                "exp": now + 4 * 3600,
                "jti": uuid.uuid4().hex,
                "sub": str(uid),
                "username": f"load{uid}",
                "roles": ["user"],
                "token_type": "access",
            },
            key,
            algorithm="RS256",
        )
        for uid in range(first, first + count)
    ]


class Baseline:
    """The baseline app: its database (fresh), its key pair, its uvicorn (own process group, stopped by PID)."""

    def __init__(self, directory: Path, port: int = BASELINE_PORT, database_url: str = BASELINE_DB):
        self.directory = directory
        self.port = port
        self.database_url = database_url
        self.url = f"http://127.0.0.1:{port}/votes/"
        self.popen: subprocess.Popen | None = None
        self.log_path = directory / "uvicorn.log"

    def start(self, timeout: float = 60.0) -> None:
        from scripts.platform_stack import ensure_postgres_database, port_open

        if port_open(self.port):
            raise RuntimeError(f"baseline port {self.port} is already in use (set BENCH_BASELINE_PORT)")
        self.directory.mkdir(parents=True, exist_ok=True)
        ensure_postgres_database(self.database_url, fresh=True)
        self.private_key, public_key = _rsa_pair(self.directory)
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
        self.server = f"uvicorn 2 workers, loop {loop}, http {http}"
        cmd = [
            sys.executable, "-m", "uvicorn", "baseline_app:app", "--app-dir", str(LUA),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2",
            "--loop", loop, "--http", http, "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        env = {
            **os.environ,
            "BASELINE_DSN": self.database_url,
            "BASELINE_PUBLIC_KEY_FILE": str(public_key),
            "BASELINE_ISSUER": ISSUER,
            "BASELINE_AUDIENCE": AUDIENCE,
        }
        with open(self.log_path, "ab") as log_file:
            self.popen = subprocess.Popen(
                cmd, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the workers are stopped with it, never by name
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"baseline uvicorn exited ({self.popen.returncode}):\n{self.tail()}")
            if self._status() == 401 and self._status() == 401:  # answers (no token); both workers up soon after
                time.sleep(0.5)
                return
            time.sleep(0.2)
        raise RuntimeError(f"baseline did not answer on {self.url} within {timeout:.0f} s:\n{self.tail()}")

    def _status(self) -> int | None:
        request = urllib.request.Request(self.url, data=b"{}", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def tokens(self, first: int, count: int) -> list[str]:
        chunks = [(str(self.private_key), first + i, min(5000, count - i)) for i in range(0, count, 5000)]
        return _pool_map(_baseline_tokens, chunks)

    def rows(self) -> dict:
        """Rows in its ledger and outbox (a check that the 201s were real inserts)."""
        import psycopg

        with psycopg.connect(self.database_url.replace("postgres://", "postgresql://"), connect_timeout=5) as conn:
            votes = conn.execute("SELECT count(*) FROM vote").fetchone()[0]
            outbox = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        return {"votes": votes, "outbox": outbox}

    def stop(self) -> None:
        if self.popen is None:
            return
        pid = self.popen.pid  # the group leader we started: its group holds the uvicorn workers
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _group_alive(pid):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(timeout=0.1)
            if not _group_alive(pid):
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=1)
        self.popen = None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombies still count for killpg: look for a live member
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    return True
    return False


# --------------------------------------------------------------------------------------------------
# the platform
# --------------------------------------------------------------------------------------------------


BENCH_RATE_LIMIT_VARIABLES = (
    "VOTE_RATE_PER_USER",
    "POLL_WRITE_RATE_PER_USER",
    "CHOICE_WRITE_RATE_PER_USER",
    "TOKEN_REFRESH_RATE_PER_IP",
)


def start_stack():
    from scripts.platform_stack import Stack

    run_dir = REPO / ".run" / "bench-stack"
    env = {
        "RUN_DIR": str(run_dir),
        "DJANGO_DEBUG": "false",
        "POLLS_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/polls_bench",
        "CHOICE_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/choices_bench",
        "VOTE_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/votes_bench",
        "REDIS_URL": "redis://127.0.0.1:6379/7",
        "BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/polls_bench",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SECRET_KEY": None,
        "JWT_PRIVATE_KEY": None,
        "JWT_PUBLIC_KEYS": None,
        "SERVICE_PRIVATE_KEY": None,
        "SERVICE_PRIVATE_KEY_FILE": None,
        "SERVICE_PUBLIC_KEYS": None,
        "SERVICE_KEYS_DIR": None,
        "TEST_SERVICE_PRIVATE_KEYS": None,
        "JWT_PRIVATE_KEY_FILE": None,
        "JWT_PUBLIC_KEYS_FILE": None,
        "DJANGO_SETTINGS_MODULE": None,
        "EVENTS_NAMESPACE": None,
        "GATEWAY_EDGE_LIMITS": "off",  # measure the platform, not the edge limiter
        # Token buckets stay on (their Redis call is part of a vote's cost) with budgets no bench user reaches.
        **dict.fromkeys(BENCH_RATE_LIMIT_VARIABLES, "1000/s burst 10000"),
    }
    ports = {"polls": PORT_BASE + 1, "choices": PORT_BASE + 2, "votes": PORT_BASE + 3, "gateway": PORT_BASE + 80}
    Stack(run_dir, env=env, ports=ports, log=lambda m: None).stop()
    # The stack appends to its logs; a bench writes ~300 MB of gateway access lines. Keep the previous run's once.
    for previous in (run_dir / "logs").glob("*.log"):
        previous.replace(previous.with_name(previous.name + ".1"))
    stack = Stack(
        run_dir, env=env, ports=ports, fresh_databases=True, log=lambda m: print(f"bench stack: {m}", file=sys.stderr)
    )
    try:
        stack.start()
    except BaseException:
        stack.stop()
        raise
    return stack


def _platform_tokens(args: tuple[str, int, int]) -> list[str]:
    from scripts.loadgen import Platform

    run_dir, first, count = args
    platform = Platform(gateway_url="http://unused", run_dir=Path(run_dir))
    return [platform.token(uid) for uid in range(first, first + count)]


class PlatformReader:
    """Reads what the platform shows after the load: /results totals, the choices' tallies, the vote DB."""

    def __init__(self, gateway: str, polls: list, vote_db: str | None):
        import requests

        self.gateway, self.polls, self.vote_db = gateway, polls, vote_db
        self.session = requests.Session()
        self.session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16))
        self.pool = ThreadPoolExecutor(8)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.session.close()

    def _get(self, path: str) -> dict:
        response = self.session.get(self.gateway + path, timeout=10, headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()

    def _results_total(self, poll) -> int:
        return int(self._get(f"/api/v1/results/{poll.id}/").get("total", 0))

    def _tally(self, poll) -> int:
        total, path = 0, f"/api/v1/choices/?poll={poll.id}&page_size=100"
        while path:
            body = self._get(path)
            total += sum(int(item.get("votes") or 0) for item in body.get("results", []))
            following = body.get("next")
            path = None
            if following:
                parts = urlsplit(following)
                path = parts.path + (f"?{parts.query}" if parts.query else "")
        return total

    def results_total(self) -> int:
        return sum(self.pool.map(self._results_total, self.polls))

    def tallies_total(self) -> int:
        return sum(self.pool.map(self._tally, self.polls))

    def _query(self, sql: str, *params):
        if not self.vote_db:
            return None
        import psycopg

        try:
            with psycopg.connect(self.vote_db.replace("postgres://", "postgresql://"), connect_timeout=5) as conn:
                return conn.execute(sql, params).fetchone()[0]
        except psycopg.Error as exc:
            return f"unavailable: {str(exc).strip().splitlines()[0]}"

    def ledger(self):
        """Votes in vote_service's ledger for the bench's polls (includes requests wrk cut off in flight)."""
        return self._query(
            "SELECT count(*) FROM votes_vote WHERE poll_id = ANY(%s::uuid[])", [p.id for p in self.polls]
        )

    def outbox_backlog(self):
        return self._query("SELECT count(*) FROM servicekit_outbox_event WHERE sent_at IS NULL")


def wait_visible(reader: PlatformReader, accepted: int, cut: int, stopped_at: float) -> dict:
    """Poll the ledger, /results and the tallies after the load until all agree (or the deadline).

    ``accepted``: the 201s wrk counted; ``cut``: requests wrk sent but stopped waiting for at the end of
    its run: vote_service may still commit them, so the ledger (when the vote DB is reachable) is the
    exact set of accepted votes, and it is only final once it stopped growing. Returns seconds from
    the load's stop until ``/results`` (sum of ``total``) and the tallies (sum of the choices' ``votes``)
    first showed every vote of the final ledger.
    """
    found: dict = {"accepted_201": accepted, "cut_in_flight": cut, "deadline_s": VISIBLE_DEADLINE}
    found["outbox_backlog_at_stop"] = reader.outbox_backlog()
    samples: list[dict] = []
    while True:
        sample: dict = {"ledger": reader.ledger()}
        if not isinstance(sample["ledger"], int):
            sample["ledger"] = None
        sample["ledger_t"] = time.monotonic() - stopped_at
        for key, read in (("results", reader.results_total), ("tallies", reader.tallies_total)):
            try:
                sample[key] = read()
            except Exception as exc:  # noqa: BLE001 - the platform may be half-broken: report, keep polling
                sample[key] = None
                found["last_error"] = f"{type(exc).__name__}: {exc}"[:300]
            sample[f"{key}_t"] = time.monotonic() - stopped_at
        samples.append(sample)
        ledger = sample["ledger"]
        if ledger is not None:  # final once unchanged for 0.5 s (vote_service has drained its queue)
            earlier = [s for s in samples if sample["ledger_t"] - s["ledger_t"] >= 0.5]
            settled = bool(earlier) and earlier[-1]["ledger"] == ledger and ledger >= accepted
            done = settled and sample["results"] == sample["tallies"] == ledger
        else:
            done = sample["results"] == sample["tallies"] and (sample["results"] or 0) >= accepted
        if done or sample["tallies_t"] > VISIBLE_DEADLINE:
            break
        time.sleep(0.05)
    last = samples[-1]
    target = last["ledger"] if last["ledger"] is not None else accepted
    for key in ("results", "tallies"):
        first = next((s[f"{key}_t"] for s in samples if (s[key] or 0) >= target), None)
        found[f"{key}_s"] = round(first, 2) if first is not None else None
    found.update(
        ledger=last["ledger"] if last["ledger"] is not None else reader.ledger(),
        results_total=last["results"],
        tallies_total=last["tallies"],
        exact=last["results"] == last["tallies"] == target and accepted <= target <= accepted + cut,
        samples=len(samples),
        outbox_backlog_at_end=reader.outbox_backlog(),
    )
    return found


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------


def print_runs(figures: dict) -> None:
    print(
        f"\n{'run':<26}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}{'201':>8}  non-2xx / errors"
    )
    for name, f in figures.items():
        if "error" in f:
            print(f"{name:<26}{'':>6}  FAILED: {f['error'][:90]}")
            continue
        status = f.get("status")
        other = {c: n for c, n in (status or {}).items() if not c.startswith("2")}
        detail = (
            (" ".join(f"{c}={n}" for c, n in sorted(other.items())) or "0") if status is not None else str(f["non_2xx"])
        )
        if f.get("socket_errors"):
            detail += f"  socket: {f['socket_errors']}"
        if f.get("wrapped"):
            detail += f"  ({f['wrapped']} reused tokens: raise BENCH_MAX_*_RATE)"
        accepted = f.get("accepted", "")
        print(
            f"{name:<26}{f['connections']:>6}{f['rps']:>9.0f}{f['p50_ms']!s:>9}{f['p99_ms']!s:>9}"
            f"{f['requests']:>10}{accepted:>8}  {detail}"
        )


def verdict(value, ok: bool | None) -> str:
    if value is None:
        return "n/a"
    return "met" if ok else "NOT met"


def rounds_of(figures: dict, name: str) -> list[dict]:
    """The successful runs called ``name`` in every round (``name``, ``name #2``, ...)."""
    runs = [figures.get(name if r == 0 else f"{name} #{r + 1}") for r in range(ROUNDS)]
    return [f for f in runs if f and "error" not in f]


def summary_rows(figures: dict, visibility: dict | None) -> list[tuple[str, str, str, str]]:
    def rate(name):  # mean over the rounds, of accepted answers only (load shedding answers 503s fast)
        runs = rounds_of(figures, name)
        accepted = [f["rps"] * f.get("accepted", f["requests"]) / max(f["requests"], 1) for f in runs]
        return sum(accepted) / len(runs) if runs else None

    def worst_p99(name):
        values = [f["p99_ms"] for f in rounds_of(figures, name) if f.get("p99_ms") is not None]
        return max(values) if values else None

    rows = []
    for conns, vname, bname in (
        (CONNECTIONS, "votes POST", "baseline POST"),
        (LOW_CONNECTIONS, f"votes POST c={LOW_CONNECTIONS}", f"baseline POST c={LOW_CONNECTIONS}"),
    ):
        v, b = rate(vname), rate(bname)
        ratio = round(v / b, 3) if v is not None and b else None
        target = f">= {TARGET_RATIO}" if conns == CONNECTIONS else "-"
        ok = ratio is not None and ratio >= TARGET_RATIO if conns == CONNECTIONS else None
        shown = f"{ratio} ({v:.0f} / {b:.0f})" if ratio is not None else "n/a"
        rows.append((f"votes/s ÷ baseline/s at c={conns}", shown, target, verdict(ratio, ok) if ok is not None else ""))
    p99 = worst_p99(f"votes POST c={LOW_CONNECTIONS}")
    rows.append((f"platform p99 at c={LOW_CONNECTIONS}", f"{p99} ms" if p99 is not None else "n/a",
                 f"<= {TARGET_P99_MS:.0f} ms", verdict(p99, p99 is not None and p99 <= TARGET_P99_MS)))  # fmt: skip
    base_p99 = worst_p99(f"baseline POST c={LOW_CONNECTIONS}")
    if base_p99 is not None:
        rows.append((f"baseline p99 at c={LOW_CONNECTIONS}", f"{base_p99} ms", "-", ""))
    if visibility is not None:
        for key, label in (("results_s", "/results"), ("tallies_s", "choice tallies")):
            value = visibility.get(key)
            shown = f"{value} s" if value is not None else f"not within {VISIBLE_DEADLINE:.0f} s"
            ok = value is not None and value <= TARGET_VISIBLE_S
            rows.append((f"every accepted vote in {label}", shown, f"<= {TARGET_VISIBLE_S:.0f} s", verdict(0, ok)))
        v = visibility
        counts = (
            f"{v['accepted_201']} (+{v['cut_in_flight']}) / {v['ledger']} / {v['results_total']} / {v['tallies_total']}"
        )
        rows.append(("201s (+cut) / ledger / results / tallies", counts, "agree", verdict(0, v.get("exact"))))
        backlog = f"{v['outbox_backlog_at_stop']} / {v['outbox_backlog_at_end']}"
        rows.append(("vote outbox backlog at stop / at end", backlog, "printed", ""))
    return rows


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def measure_tracing_cost(votes: int = 1000) -> dict | None:
    """CPU per vote in-process with tracing off, on at 100 % and at 10 % sampling (profile_vote.py), printed."""
    log("measuring the cost of tracing on the vote path (scripts/bench/profile_vote.py --tracing-cost) ...")
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench" / "profile_vote.py"), "--tracing-cost", "--votes", str(votes)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    lines = result.stdout.strip().splitlines()
    print("\n" + "\n".join(lines[:-1] if result.returncode == 0 else lines + [result.stderr.strip()[-500:]]))
    return json.loads(lines[-1]) if result.returncode == 0 and lines else None


def _bench_module(name: str):
    """A module of scripts/bench/ (a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", LUA / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-only", action="store_true", help="only the baseline (also BENCH_ONLY=baseline)")
    args = parser.parse_args(argv)
    baseline_only = args.baseline_only or os.environ.get("BENCH_ONLY", "") == "baseline"
    if os.environ.get("BENCH_ONLY", "") == "edge":
        edge = _bench_module("edge_runs")
        figures = edge.run_alone(start_stack=start_stack, wrk=wrk, connections=CONNECTIONS, polls=POLLS, log=log)
        print_runs(figures)
        return 0 if all("error" not in f for f in figures.values()) else 1
    signal.signal(signal.SIGTERM, _on_sigterm)  # stop what we started on SIGTERM too (finally below)

    load_start = os.getloadavg()
    top_start = ps_top()
    log(f"load average at start: {' '.join(f'{x:.2f}' for x in load_start)}; top CPU (ps, lifetime %):")
    for line in top_start:
        print(f"    {line}")

    stack = baseline = reader = None
    figures: dict[str, dict] = {}
    visibility = None
    platform_error = None
    exit_code = 0
    try:
        # ---- the platform: a dedicated stack (or one already running), polls, tokens ---------------------
        polls, gateway, votes_url, vote_db = [], None, None, None
        if baseline_only:
            run_dir = Path(os.environ.get("BENCH_RUN_DIR", REPO / ".run" / "bench-stack"))
        elif os.environ.get("BENCH_GATEWAY"):
            gateway = loopback_only(os.environ["BENCH_GATEWAY"].rstrip("/"))
            votes_url = loopback_only(os.environ.get("BENCH_VOTES_URL", "http://127.0.0.1:8003").rstrip("/"))
            run_dir = Path(os.environ.get("BENCH_RUN_DIR", REPO / ".run"))
            vote_db = os.environ.get("BENCH_VOTE_DATABASE_URL")
        else:
            run_dir = REPO / ".run" / "bench-stack"
        out = run_dir / "bench"
        out.mkdir(parents=True, exist_ok=True)
        platform_env = {}
        if not baseline_only:
            try:
                if gateway is None:
                    log("starting the bench stack (PostgreSQL, Redis, RabbitMQ, consumers) ...")
                    stack = start_stack()
                    gateway, votes_url = stack.gateway_url, stack.service_url("votes")
                    vote_db = "postgres://postgres@127.0.0.1:5432/votes_bench"
                from scripts.loadgen import Platform

                platform = Platform(gateway_url=gateway, run_dir=run_dir, owner_id=5_000_000)
                log(f"creating {POLLS} polls and waiting for warm replicas ...")
                polls = platform.create_polls(POLLS, choices=4, prefix="Bench")
                platform.wait_warm(polls)
                count = MAX_VOTE_RATE * DURATION * 2 * ROUNDS + OVERLOAD_RATE * DURATION * OVERLOAD_RUNS
                first_user = 10_000_000 + int(time.time()) % 1_000_000 * 100
                log(f"minting {count} platform user tokens ...")
                chunks = [(str(run_dir), first_user + i, min(2000, count - i)) for i in range(0, count, 2000)]
                write_votes_file(
                    out / "votes.txt", _pool_map(_platform_tokens, chunks), [(p.id, p.choices) for p in polls]
                )
                (out / "polls.txt").write_text("\n".join(p.id for p in polls) + "\n")
                platform_env = {
                    "BENCH_VOTES": str(out / "votes.txt"),
                    "BENCH_POLLS": str(out / "polls.txt"),
                    "BENCH_THREADS": str(THREADS),
                }
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - a platform being rewritten: report it, still measure the baseline
                platform_error = f"{type(exc).__name__}: {exc}"
                log(f"PLATFORM SET-UP FAILED, measuring the baseline alone: {platform_error[:2000]}")
                traceback.print_exc(file=sys.stderr)
                exit_code = 1
                if stack is not None:  # nothing of it may compete with the baseline for the CPUs
                    stack.stop()
                    stack = None

        # ---- the baseline ---------------------------------------------------------------------------------
        baseline = Baseline(out / "baseline")
        log(f"starting the baseline on 127.0.0.1:{BASELINE_PORT} (database {urlsplit(BASELINE_DB).path[1:]}) ...")
        baseline.start()
        count = MAX_BASELINE_RATE * DURATION * 2 * ROUNDS
        log(f"minting {count} baseline user tokens ({baseline.server}) ...")
        base_polls = [(str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(4)]) for _ in range(POLLS)]
        write_votes_file(out / "baseline_votes.txt", baseline.tokens(1, count), base_polls)
        baseline_env = {"BENCH_VOTES": str(out / "baseline_votes.txt"), "BENCH_THREADS": str(THREADS),
                        "BENCH_VOTE_PATH": "/votes/"}  # fmt: skip

        # ---- the window: interleaved runs -------------------------------------------------------------
        platform_ok = bool(platform_env)
        log(f"wrk -t{THREADS} -d{DURATION}s, c={LOW_CONNECTIONS} then c={CONNECTIONS}, baseline and platform in turn")
        cpu_before, window_busy, window_t0 = cpu_times(), machine_busy(), time.monotonic()
        children_before = os.times().children_user + os.times().children_system
        offsets = {"baseline": 0, "platform": 0}

        def run(name: str, which: str, connections: int = CONNECTIONS) -> dict:
            """One wrk run; a failure is recorded (and reported) instead of ending the bench."""
            if which in ("baseline", "platform"):
                env = {**(baseline_env if which == "baseline" else platform_env), "BENCH_OFFSET": str(offsets[which])}
                url, script = (baseline.url if which == "baseline" else f"{gateway}/api/v1/votes/"), LUA / "vote.lua"
            elif which == "results":
                env, url, script = platform_env, f"{gateway}/api/v1/results/", LUA / "results.lua"
            else:
                env, url, script = {}, f"{votes_url}/healthz", None
            before = cpu_times() if which == "platform" else None
            try:
                result = wrk(url, script=script, env=env, connections=connections)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                result = {"error": str(exc)}
            else:
                if before is not None and result.get("requests"):
                    result["cpu_ms_per_request"] = cpu_per_request(before, cpu_times(), result["requests"])
                if which in offsets:
                    offsets[which] = result.get("next_offset") or offsets[which] + result["requests"] + connections * 4
            figures[name] = result
            shown = (
                result.get("error")
                or f"{result['rps']:.0f} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms"
            )
            log(f"  {name:<24} {shown}")
            if result.get("cpu_ms_per_request"):
                where = ", ".join(f"{label} {ms}" for label, ms in result["cpu_ms_per_request"].items())
                log(f"  {'':<24} CPU ms per request: {where}")
            return result

        if platform_ok:
            run("healthz (before)", "healthz")
        for r in range(ROUNDS):  # low load first (no backlog yet), then c=64, whose backlog is measured after
            suffix = f" #{r + 1}" if r else ""
            for connections, name in ((LOW_CONNECTIONS, f"POST c={LOW_CONNECTIONS}"), (CONNECTIONS, "POST")):
                run(f"baseline {name}{suffix}", "baseline", connections)
                if platform_ok:
                    run(f"votes {name}{suffix}", "platform", connections)
        if platform_ok:
            stopped_at = time.monotonic()
            voted = [f for n, f in figures.items() if n.startswith("votes POST")]
            accepted = sum(f.get("accepted", 0) for f in voted)
            cut = sum(f.get("cut_in_flight", 0) for f in voted)
            log(f"load stopped: waiting until all {accepted} accepted votes are visible (<= {VISIBLE_DEADLINE:.0f} s)")
            reader = PlatformReader(gateway, polls, vote_db)
            visibility = wait_visible(reader, accepted, cut, stopped_at)
            log(f"  in /results after {visibility['results_s']} s, in the tallies after {visibility['tallies_s']} s")
            run("results GET", "results")
            run("healthz (after)", "healthz")
            edge = _bench_module("edge_runs")  # results with and without the gateway's micro-cache
            figures.update(edge.measure(wrk=wrk, platform=platform, out=out, connections=CONNECTIONS, log=log))
            if OVERLOAD and "accepted" in figures.get("votes POST", {}):
                overload = _bench_module("overload")  # a saturation scan, then votes at 4x and 16x its knee
                access_log = stack.logs_dir / "gateway.log" if stack else os.environ.get("BENCH_GATEWAY_ACCESS_LOG")
                figures.update(
                    overload.measure(
                        wrk=wrk,
                        url=f"{gateway}/api/v1/votes/",
                        env=platform_env,
                        earlier=[f for name, f in figures.items() if name.startswith("votes POST")],
                        access_log=Path(access_log) if access_log else None,
                        duration=DURATION,
                        offset=offsets["platform"],
                        log=log,
                    )
                )
        window_s = time.monotonic() - window_t0
        cpu_after, window_busy_end = cpu_times(), machine_busy()
        children_cpu = os.times().children_user + os.times().children_system - children_before
        baseline_rows = baseline.rows()

        # ---- report -----------------------------------------------------------------------------------
        load_end = os.getloadavg()
        top_end = ps_top()
        busy = (window_busy_end[0] - window_busy[0]) / max(window_busy_end[1] - window_busy[1], 1.0)
        during = window_cpu(cpu_before, cpu_after, children_cpu)
        print_runs(figures)
        ratios = {}
        healthz = [figures[n]["rps"] for n in ("healthz (before)", "healthz (after)") if "rps" in figures.get(n, {})]
        for name in ("votes POST", "results GET"):
            if healthz and "rps" in figures.get(name, {}):
                ratios[f"{name.split()[0]}/s ÷ healthz/s"] = round(
                    figures[name]["rps"] / (sum(healthz) / len(healthz)), 3
                )
        rows = summary_rows(figures, visibility)
        if not platform_ok:
            rows = [row for row in rows if row[0].startswith("baseline")]
        for key in (f"votes/s ÷ baseline/s at c={CONNECTIONS}", f"votes/s ÷ baseline/s at c={LOW_CONNECTIONS}"):
            for row in rows:
                if row[0] == key and row[1] != "n/a":
                    ratios[key] = float(row[1].split()[0])
        print(f"\n{'summary (issue 9 targets)':<46}{'value':<36}{'target':<12}verdict")
        for label, value, target, ok in rows:
            print(f"{label:<46}{value:<36}{target:<12}{ok}")
        print(f"{'baseline rows: votes / outbox':<46}{baseline_rows['votes']} / {baseline_rows['outbox']}")
        if platform_error:
            print(f"\nPLATFORM NOT MEASURED: {platform_error[:500]}")
        print(
            f"\nmachine: {os.cpu_count()} CPUs; load average {' '.join(f'{x:.2f}' for x in load_start)} at start, "
            f"{' '.join(f'{x:.2f}' for x in load_end)} at the end; "
            f"CPUs {busy:.0%} busy during the {window_s:.0f} s window"
        )
        t = during["totals_cpu_s"]
        print(
            f"CPU-seconds used during the window: this bench {t['bench']}, PostgreSQL {t['postgres']}, "
            f"everything else {t['others']} (of {window_s * (os.cpu_count() or 1):.0f}); top (* = this bench):"
        )
        for row in during["top"]:
            print(f"  {row['cpu_s']:>6.1f} s {'*' if row['bench'] else ' '} {row['processes']:>3} x  {row['what']}")
        print("top CPU at the end (ps, lifetime %):")
        for line in top_end:
            print(f"    {line}")
        tracing_cost = None if baseline_only else measure_tracing_cost()
        report = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "wrk": f"-t{THREADS} -d{DURATION}s, c={LOW_CONNECTIONS} and c={CONNECTIONS}, {ROUNDS} round(s)",
            "order": list(figures),
            "figures": figures,
            "ratios": ratios,
            "targets": [dict(zip(("what", "value", "target", "verdict"), row, strict=True)) for row in rows],
            "visibility": visibility,
            "baseline": {"server": baseline.server, "app": "scripts/bench/baseline_app.py", "rows": baseline_rows},
            "platform_error": platform_error,
            "tracing_cpu_ms_per_vote": tracing_cost,
            "machine": {
                "cpus": os.cpu_count(),
                "loadavg_start": load_start,
                "loadavg_end": load_end,
                "cpu_busy_during_window": round(busy, 3),
                "window_s": round(window_s, 1),
                "cpu_during_window": during,
                "ps_top_start": top_start,
                "ps_top_end": top_end,
            },
        }
        (out / "results.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
        print(f"written: {out / 'results.json'}")
        if any("error" in f for f in figures.values()):
            exit_code = 1
        return exit_code
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping what it started", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the clean-up finish
        if reader is not None:
            reader.close()
        if baseline is not None:
            baseline.stop()
        if stack is not None:
            stack.stop()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
