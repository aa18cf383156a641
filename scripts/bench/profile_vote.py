"""CPU of one vote request inside vote_service, without a server: the WSGI handler called directly.

    .venv/bin/python scripts/bench/profile_vote.py            # CPU ms per vote (process time)
    .venv/bin/python scripts/bench/profile_vote.py --profile  # + the top functions (cProfile)
    .venv/bin/python scripts/bench/profile_vote.py --profile --dump /tmp/vote.prof  # + stats for pstats
    .venv/bin/python scripts/bench/profile_vote.py --tracing 10   # tracing on, 10 % of votes sampled
    .venv/bin/python scripts/bench/profile_vote.py --tracing-cost # off, 100 % and 10 %: one line each

``--tracing P`` sets servicekit.tracing up as a web worker does, exporting OTLP/HTTP (protobuf, batched)
to a receiver in another process (tests/otlp_receiver.py, so its decoding is not counted), and gives
each vote the ``traceparent`` the gateway would send, sampled for P % of them. The CPU figure includes
the exporter's thread (process time).

Runs against a scratch PostgreSQL database (``PROFILE_DATABASE_URL``, default ``bench_profile`` on
127.0.0.1), Redis db 15 and the local broker; every vote is a real insert from a distinct voter with a
distinct token, as in ``make bench``. Use it to see what a change to the request path buys before
measuring it end to end with ``make bench``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "vote_service"), str(REPO / "servicekit")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=3000)
    parser.add_argument("--profile", action="store_true", help="print the top functions by cumulative time")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--dump", metavar="FILE", help="also write the cProfile stats to FILE (for pstats)")
    parser.add_argument("--tracing", type=float, metavar="PERCENT", help="tracing on, PERCENT of votes sampled")
    parser.add_argument("--tracing-cost", action="store_true", help="CPU per vote: tracing off, 100 %%, 10 %%")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args()
    if args.tracing_cost:
        return tracing_cost(args.votes)
    receiver = None
    if args.tracing is not None:
        receiver = _start_receiver()
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver[1]
        os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_always_on"
    else:
        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    try:
        return _run(args)
    finally:
        if receiver is not None:
            receiver[0].terminate()
            receiver[0].wait(10)


def _start_receiver() -> tuple:
    """``(process, endpoint)`` of an OTLP receiver in a child process (its CPU is not the vote's)."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "tests.otlp_receiver"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def tracing_cost(votes: int) -> int:
    """Run this script for tracing off, on at 100 % and at 10 % sampling; print CPU ms per vote of each."""
    import subprocess

    rows = {}
    for label, extra in (
        ("off", []),
        ("on, 100 % sampled", ["--tracing", "100"]),
        ("on, 10 % sampled", ["--tracing", "10"]),
    ):
        out = subprocess.run(
            [sys.executable, __file__, "--votes", str(votes), "--json", *extra],
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
        if out.returncode != 0:
            print(f"tracing cost ({label}): failed: {out.stderr.strip()[-500:]}")
            return 1
        rows[label] = json.loads(out.stdout.strip().splitlines()[-1])
    off = rows["off"]["cpu_ms"]
    print(f"vote CPU per request, in-process (profile_vote.py, {votes} votes each):")
    for label, row in rows.items():
        print(f"  tracing {label:<20}{row['cpu_ms']:.3f} ms   ({row['cpu_ms'] / off - 1:+.0%} vs off)")
    print(json.dumps({label: row["cpu_ms"] for label, row in rows.items()}))
    return 0


def _run(args: argparse.Namespace) -> int:

    database = os.environ.get("PROFILE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_profile")
    os.environ["VOTE_DATABASE_URL"] = database
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
    os.environ.setdefault("RUN_DIR", str(REPO / ".run" / "profile"))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from servicekit.testing import configure_test_environment

    _create_database(database)
    configure_test_environment(project="vote_service", database_env="VOTE_DATABASE_URL", database="bench_profile")

    from django.core.management import call_command

    from servicekit.testing import make_access_token
    from servicekit.wsgi import service_application
    from votes.models import ChoiceReplica, PollReplica, Vote

    call_command("migrate", verbosity=0)
    Vote.objects.all().delete()
    polls = [PollReplica.objects.create(id=uuid.uuid4(), version=2, status="open", owner_id=1) for _ in range(20)]
    choices = {
        poll.id: [ChoiceReplica.objects.create(id=uuid.uuid4(), version=1, poll_id=poll.id) for _ in range(4)]
        for poll in polls
    }
    application = service_application("vote_service.settings")  # tracing set up when --tracing
    from django.db import connections

    connections.close_all()  # the next connection is made through the (instrumented) psycopg.connect
    sampled_every = round(100 / args.tracing) if args.tracing else 0
    bodies = []
    for n in range(args.votes):
        poll = polls[n % len(polls)]
        body = json.dumps({"poll": str(poll.id), "choice": str(choices[poll.id][n % 4].id)}).encode()
        token = make_access_token(100_000 + n // len(polls), f"voter{n}")
        bodies.append((body, f"Bearer {token}"))

    def call(body: bytes, authorization: str) -> str:
        trace_id = uuid.uuid4().hex
        calls[0] += 1
        flag = "01" if sampled_every and calls[0] % sampled_every == 0 else "00"
        environ = {
            "HTTP_TRACEPARENT": f"00-{trace_id}-{trace_id[16:]}-{flag}",
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/v1/votes/",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8003",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": authorization,
            "HTTP_X_REQUEST_ID": uuid.uuid4().hex,
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        status: list[str] = []
        chunks = application(environ, lambda s, h, exc_info=None: status.append(s))
        b"".join(chunks)
        return status[0]

    calls = [0]
    for body, authorization in bodies[:50]:  # warm-up: imports, connections, caches
        call(body, authorization)
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    statuses: dict[str, int] = {}
    backend = _backend_pid()
    backend_cpu = _process_cpu(backend)
    started_cpu, started = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for body, authorization in bodies[50:]:
        status = call(body, authorization)
        statuses[status] = statuses.get(status, 0) + 1
    if profiler:
        profiler.disable()
    if args.tracing is not None:
        from servicekit import tracing

        tracing.force_flush(30_000)  # the spans of these votes, exported (their CPU counted)
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    backend_cpu = _process_cpu(backend) - backend_cpu
    count = len(bodies) - 50
    if args.json:
        print(json.dumps({"cpu_ms": cpu / count * 1000, "wall_ms": wall / count * 1000,
                          "postgres_cpu_ms": backend_cpu / count * 1000, "statuses": statuses}))  # fmt: skip
        return 0
    print(
        f"{count} votes: {cpu / count * 1000:.3f} ms CPU (PostgreSQL backend {backend_cpu / count * 1000:.3f} ms), "
        f"{wall / count * 1000:.3f} ms wall per vote; {statuses}"
    )
    if profiler:
        if args.dump:
            profiler.dump_stats(args.dump)
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
    return 0


def _backend_pid() -> int:
    """The PostgreSQL backend serving this process's Django connection (its CPU is the statement's cost)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a local process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _create_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    raise SystemExit(main())
