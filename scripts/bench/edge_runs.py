"""The edge-cache runs of ``make bench``: results reads with and without the gateway's micro-cache.

``scripts/bench.py`` calls ``measure`` after its results run, with its own ``wrk`` function and the
platform it voted on::

    figures.update(edge_runs.measure(wrk=wrk, platform=platform, out=out, connections=64, log=log))

Three runs of the same length: the gateway's own ``/healthz`` (nginx answering alone: the ceiling),
``GET /api/v1/results/{poll}/`` of open polls (``public, no-cache``: never kept at the edge, every read
reaches vote_service, as it must for a vote to show at once), and the same reads of closed polls
(``immutable``: served from the micro-cache; ``measure`` creates and closes a few polls for it). Printed:
both rates and latencies, and cached reads/s ÷ gateway healthz/s (target >= 0.9: a cached read costs
about what nginx's own answer does). The bench stack runs with ``GATEWAY_EDGE_LIMITS=off``, so the edge
limiter is not what is measured.

``BENCH_ONLY=edge scripts/bench.sh`` runs only these (the bench stack, a few polls, the three runs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGET_RATIO = 0.9
CLOSED_POLLS = 5
RESULTS_LUA = Path(__file__).resolve().parent / "results.lua"


def measure(*, wrk: Callable[..., dict], platform: Any, out: Path, connections: int, log: Callable) -> dict:
    """The three runs by name (wrk's figures each; the cached run also carries ``vs_gateway_healthz``).
    ``platform`` is a ``scripts.loadgen.Platform`` whose polls file (``out/polls.txt``) lists open polls."""
    gateway = platform.gateway_url
    closed = platform.create_polls(CLOSED_POLLS, choices=4, prefix="Bench edge, closed")
    platform.wait_warm(closed)
    platform.close_polls(closed)
    (out / "closed-polls.txt").write_text("\n".join(p.id for p in closed) + "\n")
    figures = {}
    results = f"{gateway}/api/v1/results/"
    runs = [
        ("gateway healthz", f"{gateway}/healthz", None, {}),
        ("results GET, no edge cache", results, RESULTS_LUA, {"BENCH_POLLS": str(out / "polls.txt")}),  # open polls
        ("results GET, edge cache", results, RESULTS_LUA, {"BENCH_POLLS": str(out / "closed-polls.txt")}),
    ]
    for name, url, script, run_env in runs:
        try:
            figures[name] = wrk(url, script=script, env=run_env, connections=connections)
        except Exception as exc:  # noqa: BLE001 - one failed run is reported, the others still measured
            figures[name] = {"error": str(exc)}
        result = figures[name]
        shown = result.get("error") or (
            f"{result['rps']:.0f} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms"
        )
        log(f"  {name:<28} {shown}")
    healthz, cached = figures["gateway healthz"], figures["results GET, edge cache"]
    if "rps" in healthz and "rps" in cached and healthz["rps"]:
        ratio = round(cached["rps"] / healthz["rps"], 3)
        cached["vs_gateway_healthz"] = ratio
        verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
        log(f"  cached results/s ÷ gateway healthz/s = {ratio} (target >= {TARGET_RATIO}: {verdict})")
    uncached = figures["results GET, no edge cache"]
    if "rps" in uncached and "rps" in cached and uncached["rps"]:
        log(f"  edge cache speed-up on results reads: x{cached['rps'] / uncached['rps']:.1f}")
    return figures


def run_alone(*, start_stack: Callable, wrk: Callable[..., dict], connections: int, polls: int, log: Callable) -> dict:
    """``BENCH_ONLY=edge``: start the bench stack, create ``polls`` open polls, measure, stop the stack."""
    from scripts.loadgen import Platform

    log("starting the bench stack (edge limits off) ...")
    stack = start_stack()
    try:
        out = stack.run_dir / "bench"
        out.mkdir(parents=True, exist_ok=True)
        platform = Platform(gateway_url=stack.gateway_url, run_dir=stack.run_dir, owner_id=5_000_000)
        created = platform.create_polls(polls, choices=4, prefix="Bench edge")
        platform.wait_warm(created)
        (out / "polls.txt").write_text("\n".join(p.id for p in created) + "\n")
        log(f"edge runs on {polls} open and {CLOSED_POLLS} closed polls, c={connections}:")
        return measure(wrk=wrk, platform=platform, out=out, connections=connections, log=log)
    finally:
        stack.stop()
