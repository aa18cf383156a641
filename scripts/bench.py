"""The benchmark behind ``make bench`` (see scripts/bench.sh and docs/performance.md).

Measures, in one run and through the gateway:

- ``POST /api/v1/votes/``: every request from a distinct user (tokens minted with the stack's key),
  on polls whose replicas are warm in vote_service;
- ``GET /api/v1/results/{poll}/``;
- ``GET /healthz`` of vote_service (its own port: the gateway's ``/healthz`` is the gateway's),

each with wrk at the same concurrency, and prints req/s, p50/p99 and the ratios to ``/healthz``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "servicekit"))

from scripts.loadgen import Platform  # noqa: E402

DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
POLLS = int(os.environ.get("BENCH_POLLS", "20"))
MAX_VOTE_RATE = int(os.environ.get("BENCH_MAX_VOTE_RATE", "1500"))  # tokens to mint: rate x duration


def _tokens(args: tuple[str, int, int]) -> list[str]:
    run_dir, first, count = args
    platform = Platform(gateway_url="http://unused", run_dir=Path(run_dir))
    return [platform.token(uid) for uid in range(first, first + count)]


def mint_tokens(run_dir: Path, first: int, count: int) -> list[str]:
    chunks = [(str(run_dir), first + i, min(2000, count - i)) for i in range(0, count, 2000)]
    with ProcessPoolExecutor(max(os.cpu_count() or 2, 2)) as pool:
        return [token for chunk in pool.map(_tokens, chunks) for token in chunk]


def wrk(
    url: str,
    *,
    script: str | None = None,
    env: dict | None = None,
    connections: int = CONNECTIONS,
    duration: int = DURATION,
) -> dict:
    cmd = ["wrk", f"-t{THREADS}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(
        cmd + [url], capture_output=True, text=True, env={**os.environ, **(env or {})}, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rps": rps,
        "p50_ms": pct.get("50"),
        "p99_ms": pct.get("99"),
        "requests": total,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()
    return round(float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)


def start_stack():
    from scripts.stack import Stack

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
        "SERVICE_TOKEN": None,
        "JWT_PRIVATE_KEY_FILE": None,
        "JWT_PUBLIC_KEYS_FILE": None,
        "DJANGO_SETTINGS_MODULE": None,
        "EVENTS_NAMESPACE": None,
    }
    base = int(os.environ.get("BENCH_PORT_BASE", "18500"))
    ports = {"polls": base + 1, "choices": base + 2, "votes": base + 3, "gateway": base + 80}
    Stack(run_dir, env=env, ports=ports, log=lambda m: None).stop()
    stack = Stack(
        run_dir, env=env, ports=ports, fresh_databases=True, log=lambda m: print(f"bench stack: {m}", file=sys.stderr)
    )
    stack.start()
    return stack


def main() -> int:
    stack = None
    if os.environ.get("BENCH_GATEWAY"):
        gateway = os.environ["BENCH_GATEWAY"].rstrip("/")
        votes_url = os.environ.get("BENCH_VOTES_URL", "http://127.0.0.1:8003").rstrip("/")
        run_dir = Path(os.environ.get("BENCH_RUN_DIR", REPO / ".run"))
    else:
        stack = start_stack()
        gateway, votes_url, run_dir = stack.gateway_url, stack.service_url("votes"), stack.run_dir
    try:
        out = run_dir / "bench"
        out.mkdir(parents=True, exist_ok=True)
        platform = Platform(gateway_url=gateway, run_dir=run_dir, owner_id=5_000_000)
        print(f"bench: creating {POLLS} polls and waiting for warm replicas ...", flush=True)
        polls = platform.create_polls(POLLS, choices=4, prefix="Bench")
        platform.wait_warm(polls)
        count = MAX_VOTE_RATE * DURATION
        first_user = 10_000_000 + int(time.time()) % 1_000_000 * 100
        print(f"bench: minting {count} user tokens ...", flush=True)
        tokens = mint_tokens(run_dir, first_user, count)
        with open(out / "votes.txt", "w") as handle:
            for i, token in enumerate(tokens):
                poll = polls[i % len(polls)]
                handle.write(f"{token} {poll.id} {poll.choices[(i // len(polls)) % len(poll.choices)]}\n")
        (out / "polls.txt").write_text("\n".join(p.id for p in polls) + "\n")

        lua = REPO / "scripts" / "bench"
        env = {
            "BENCH_VOTES": str(out / "votes.txt"),
            "BENCH_POLLS": str(out / "polls.txt"),
            "BENCH_THREADS": str(THREADS),
        }
        print(f"bench: wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s through {gateway}", flush=True)
        figures = {
            "healthz (before)": wrk(f"{votes_url}/healthz"),
            "votes POST": wrk(f"{gateway}/api/v1/votes/", script=str(lua / "vote.lua"), env=env),
            "results GET": wrk(f"{gateway}/api/v1/results/", script=str(lua / "results.lua"), env=env),
            "healthz (after)": wrk(f"{votes_url}/healthz"),
        }
        # Low-load latency of the vote path (at c=64 the p99 is mostly queueing).
        used = figures["votes POST"]["requests"] + CONNECTIONS * 4
        figures["votes POST c=8"] = wrk(
            f"{gateway}/api/v1/votes/",
            script=str(lua / "vote.lua"),
            env={**env, "BENCH_OFFSET": str(used)},
            connections=8,
            duration=5,
        )
        healthz = (figures["healthz (before)"]["rps"] + figures["healthz (after)"]["rps"]) / 2
        ratios = {
            "votes/s ÷ healthz/s": round(figures["votes POST"]["rps"] / healthz, 2),
            "results/s ÷ healthz/s": round(figures["results GET"]["rps"] / healthz, 2),
        }
        print(f"\n{'path':<20}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}{'non-2xx':>9}")
        for name, f in figures.items():
            print(f"{name:<20}{f['rps']:>10.0f}{f['p50_ms']:>10}{f['p99_ms']:>10}{f['requests']:>10}{f['non_2xx']:>9}")
        for name, value in ratios.items():
            print(f"{name}: {value}")
        target = "met" if ratios["votes/s ÷ healthz/s"] >= 0.5 else "NOT met"
        print(f"target votes/s >= 0.5 x healthz/s: {target}")
        (out / "results.json").write_text(
            json.dumps(
                {"figures": figures, "ratios": ratios, "wrk": f"-t{THREADS} -c{CONNECTIONS} -d{DURATION}s"}, indent=2
            )
        )
        print(f"written: {out / 'results.json'}")
        return 0
    finally:
        if stack is not None:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
