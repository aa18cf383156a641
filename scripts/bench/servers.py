"""The vote path under different web server configurations, one after another in one window.

    .venv/bin/python scripts/bench/servers.py                       # the default set below
    .venv/bin/python scripts/bench/servers.py granian:3x1 granian:2x2 gunicorn:5

Each configuration serves vote_service alone on 127.0.0.1 (no gateway, no consumers: only the request),
on a scratch PostgreSQL database (``bench_servers``) with warm replicas; wrk posts votes from distinct
users (``scripts/bench/vote.lua``). Printed per configuration: votes/s, p50/p99 and the CPU
milliseconds per vote of the server's processes (from /proc). How the platform's web server and its
worker count were chosen (docs/performance.md). ``gunicorn:N`` needs gunicorn installed
(``.venv/bin/pip install gunicorn``); it is not a dependency of the platform.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
PORT = 18777
DATABASE = "postgres://postgres@127.0.0.1:5432/bench_servers"
DEFAULT = ["granian:3x1", "granian:2x1", "granian:4x1", "granian:2x2", "gunicorn:5"]


def prepare(work: Path, votes: int) -> dict[str, str]:
    """Migrate the scratch database, store 20 open polls with 4 choices, write the votes file; the
    environment a server needs to trust the tokens in it."""
    sys.path[:0] = [str(REPO), str(REPO / "vote_service"), str(REPO / "servicekit")]
    os.environ.update(VOTE_DATABASE_URL=DATABASE, REDIS_URL="redis://127.0.0.1:6379/15", RUN_DIR=str(work))
    from scripts.platform_stack import ensure_postgres_database
    from servicekit.testing import configure_test_environment

    ensure_postgres_database(DATABASE, fresh=False)
    configure_test_environment(project="vote_service", database_env="VOTE_DATABASE_URL", database="bench_servers")
    from django.core.management import call_command

    from servicekit.testing import make_access_token
    from votes.models import ChoiceReplica, PollReplica, Vote

    call_command("migrate", verbosity=0)
    Vote.objects.all().delete()
    polls = [PollReplica.objects.create(id=uuid.uuid4(), version=2, status="open", owner_id=1) for _ in range(20)]
    choices = {
        p.id: [ChoiceReplica.objects.create(id=uuid.uuid4(), version=1, poll_id=p.id) for _ in range(4)] for p in polls
    }
    with open(work / "votes.txt", "w") as handle:
        for n in range(votes):
            poll = polls[n % len(polls)]
            handle.write(f"{make_access_token(300_000 + n, f'u{n}')} {poll.id} {choices[poll.id][n % 4].id}\n")
    keys = ("JWT_PUBLIC_KEYS", "JWT_ISSUER", "JWT_AUDIENCE", "SERVICE_PUBLIC_KEYS", "JWKS_URL", "JWT_KEY_ID")
    return {name: os.environ[name] for name in keys}


def command(config: str) -> tuple[list[str], dict[str, str]]:
    server, _, shape = config.partition(":")
    if server == "granian":
        workers, _, threads = shape.partition("x")
        argv = [str(PYTHON), "-m", "servicekit.server", "vote_service.wsgi:application"]
        return argv, {"WEB_BIND": f"127.0.0.1:{PORT}", "WEB_WORKERS": workers, "WEB_THREADS": threads or "1"}
    if server == "gunicorn":
        argv = [str(REPO / ".venv/bin/gunicorn"), "vote_service.wsgi:application", "-b", f"127.0.0.1:{PORT}"]
        return argv + ["-w", shape or "5", "--keep-alive", "75", "--log-level", "warning"], {}
    raise SystemExit(f"unknown configuration {config!r} (granian:WxT or gunicorn:N)")


def cpu_of_group(pgid: int) -> float:
    """CPU seconds of every live process in process group ``pgid``."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measure(config: str, env: dict[str, str], work: Path, offset: int, duration: int, connections: int) -> dict:
    argv, extra = command(config)
    server_env = {
        **os.environ,
        **env,
        **extra,
        "RUN_DIR": str(work),
        "VOTE_DATABASE_URL": DATABASE,
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "LOG_LEVEL": "WARNING",
        "WEB_LOG_LEVEL": "warning",
        "DJANGO_SETTINGS_MODULE": "vote_service.settings",
        "POLLS_INTERNAL_URL": "http://127.0.0.1:9",  # warm replicas: any call would fail
        "CHOICE_INTERNAL_URL": "http://127.0.0.1:9",
    }
    log = open(work / f"{config.replace(':', '-')}.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        argv, cwd=REPO / "vote_service", env=server_env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"{config} did not start: see {log.name}") from None
                time.sleep(0.2)
        before = cpu_of_group(server.pid)
        wrk_env = {
            **os.environ,
            "BENCH_VOTES": str(work / "votes.txt"),
            "BENCH_THREADS": "2",
            "BENCH_OFFSET": str(offset),
        }
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency",
             "-s", str(REPO / "scripts/bench/vote.lua"), f"http://127.0.0.1:{PORT}"],
            env=wrk_env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        cpu = cpu_of_group(server.pid) - before
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
    statuses = dict(
        item.split("=") for line in out.splitlines() if line.startswith("bench-status") for item in line.split()[1:]
    )
    answered = sum(int(v) for v in statuses.values())
    latency = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip().startswith(("50%", "99%"))}
    next_offset = next(
        (int(line.split()[1]) for line in out.splitlines() if line.startswith("bench-next-offset")), offset
    )
    return {
        "config": config,
        "votes/s": round(int(statuses.get("201", 0)) / duration),
        "p50": latency.get("50%"),
        "p99": latency.get("99%"),
        "statuses": statuses,
        "cpu ms/vote": round(1000 * cpu / max(answered, 1), 2),
        "next_offset": next_offset,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", default=DEFAULT, help="granian:WORKERSxTHREADS or gunicorn:WORKERS")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    work = REPO / ".run" / "bench-servers"
    work.mkdir(parents=True, exist_ok=True)
    env = prepare(work, votes=len(args.configs) * args.duration * 1500)
    offset, rows = 0, []
    for config in args.configs:
        row = measure(config, env, work, offset, args.duration, args.connections)
        offset = row.pop("next_offset")
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{'config':<14} {'votes/s':>8} {'p50':>10} {'p99':>10} {'CPU ms/vote':>12}")
    for row in rows:
        print(f"{row['config']:<14} {row['votes/s']:>8} {row['p50']!s:>10} {row['p99']!s:>10} {row['cpu ms/vote']:>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
