"""The overload run of ``make bench``: votes at 4x the connections that saturate them.

``scripts/bench.py`` calls ``measure`` at the end of its window, with its own ``wrk`` function and
votes file. It runs votes at ``SATURATING`` connections (16: on 2 cores the vote rate reaches its
plateau by c=8, the bench's low run), then at ``MULTIPLE`` x that (64), one right after the other so
that both see the same machine::

    figures.update(overload.measure(wrk=wrk, url=f"{gateway}/api/v1/votes/", env=..., earlier=[...],
                                    access_log=stack.logs_dir / "gateway.log", duration=10))

Its clients honour ``Retry-After`` (``BENCH_RETRY_AFTER=1`` in scripts/bench/vote.lua: a 503 delays
one of the thread's next requests by a second), as the shedding contract asks of a client; a client
that retries at once instead turns every shed into more load (wrk's default). Printed and returned:
goodput (201s per second) against the best 201 rate of the saturated runs (this one and ``earlier``),
and the p99 of the *accepted* votes, over the whole run and after its first ``SETTLE_S`` seconds (the
queue the burst built before the workers judged it a standing one). wrk's own latency mixes the fast
503s of load shedding (servicekit.shedding) with the 201s, so the accepted p99 comes from the
gateway's access log (ECS JSON lines: ``event.duration`` in ns, the status, the upstream's status)
for the lines the run appended. Shed answers (503 from the service) are counted apart from the
gateway's own 503s (no upstream answered); their p99 shows how fast a client learns to retry.
Targets (issue 11): at 4x overload accepted p99 <= 250 ms and goodput >= 90 % of the saturated rate.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

TARGET_P99_MS, TARGET_GOODPUT = 250.0, 0.90
MULTIPLE = 4
SATURATING = 16
SETTLE_S = 2


def _p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1)


def access_figures(lines: list[str], path: str) -> dict:
    """Statuses and latencies (ms) of the requests to ``path`` in gateway access-log lines."""
    accepted: list[tuple[str, float]] = []
    shed: list[float] = []
    statuses: dict[int, int] = {}
    gateway_503 = 0
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the error log shares the file
        if entry.get("event", {}).get("dataset") != "gateway.access" or entry.get("url", {}).get("path") != path:
            continue
        status = entry["http"]["response"]["status_code"]
        statuses[status] = statuses.get(status, 0) + 1
        ms = entry["event"]["duration"] / 1e6
        if status == 201:
            accepted.append((entry["@timestamp"], ms))
        elif status == 503:
            upstream = entry.get("gateway", {}).get("upstream", {}).get("status", "")
            if upstream.split(",")[-1].strip() == "503":
                shed.append(ms)
            else:
                gateway_503 += 1
    seconds = sorted({stamp for stamp, _ in accepted})
    settled = [ms for stamp, ms in accepted if stamp not in seconds[:SETTLE_S]]
    return {
        "statuses": statuses,
        "accepted_p99_ms": _p99([ms for _, ms in accepted]),
        "accepted_p99_settled_ms": _p99(settled),
        "shed": len(shed),
        "shed_p99_ms": _p99(shed),
        "gateway_503": gateway_503,
    }


def _wrk(wrk: Callable[..., dict], url: str, env: dict, connections: int, log: Callable[[str], None]) -> dict:
    try:
        return wrk(url, script=Path(__file__).parent / "vote.lua", env=env, connections=connections)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        log(f"  votes c={connections}: FAILED {exc}")
        return {"error": str(exc), "connections": connections}


def measure(
    *,
    wrk: Callable[..., dict],
    url: str,
    env: dict,
    earlier: list[dict],
    access_log: Path | None,
    duration: float,
    offset: int,
    log: Callable[[str], None] = print,
) -> dict[str, dict]:
    """The saturating run and the overload run (clients honouring ``Retry-After``), by name."""
    saturated = _wrk(wrk, url, {**env, "BENCH_OFFSET": str(offset)}, SATURATING, log)
    offset = saturated.get("next_offset") or offset + saturated.get("requests", 0) + SATURATING * 4
    if "error" not in saturated:
        log(f"  votes c={SATURATING:<18} {saturated['accepted'] / duration:.0f} 201/s, p99 {saturated['p99_ms']} ms")
    connections = MULTIPLE * SATURATING
    start = access_log.stat().st_size if access_log and access_log.exists() else 0
    env = {**env, "BENCH_OFFSET": str(offset), "BENCH_RETRY_AFTER": "1"}
    result = _wrk(wrk, url, env, connections, log)
    names = (f"votes saturating c={SATURATING}", f"votes overload c={connections}")
    if "error" in result:
        return dict(zip(names, (saturated, result), strict=True))
    if access_log and access_log.exists():
        with open(access_log, errors="replace") as handle:
            handle.seek(start)
            result["gateway"] = access_figures(handle.read().splitlines(), "/api/v1/votes/")
    saturated_rate = max((run.get("accepted", 0) for run in [saturated, *earlier]), default=0) / duration
    goodput = result.get("accepted", 0) / duration
    result["goodput_per_s"] = round(goodput, 1)
    result["saturated_per_s"] = round(saturated_rate, 1)
    result["goodput_ratio"] = round(goodput / saturated_rate, 3) if saturated_rate else None
    gateway = result.get("gateway", {})
    p99 = gateway.get("accepted_p99_ms")
    ratio = result["goodput_ratio"]
    result["targets"] = {
        "accepted_p99_ms": [p99, TARGET_P99_MS, p99 is not None and p99 <= TARGET_P99_MS],
        "goodput_ratio": [ratio, TARGET_GOODPUT, ratio is not None and ratio >= TARGET_GOODPUT],
    }
    settled = gateway.get("accepted_p99_settled_ms")
    log(
        f"  overload c={connections}: goodput {goodput:.0f} 201/s = {ratio} x the saturated {saturated_rate:.0f}/s "
        f"(target >= {TARGET_GOODPUT}); accepted p99 {p99} ms, after {SETTLE_S} s {settled} ms "
        f"(target <= {TARGET_P99_MS:.0f})"
    )
    log(
        f"  {'':<24} shed {gateway.get('shed')} (p99 {gateway.get('shed_p99_ms')} ms), "
        f"gateway 503s {gateway.get('gateway_503')}, statuses {result.get('status')}"
    )
    return dict(zip(names, (saturated, result), strict=True))
