"""The overload runs of ``make bench``: votes at 4x (and 16x) the connections that saturate them.

``scripts/bench.py`` calls ``measure`` at the end of its window, with its own ``wrk`` function::

    figures.update(overload.measure(wrk=wrk, url=f"{gateway}/api/v1/votes/", env=..., earlier=[...],
                                    access_log=stack.logs_dir / "gateway.log", duration=10, offset=...))

First the *saturation scan*: votes at ``SCAN`` connections (4, 8, 16, 32), one run each. The saturating
count is the fewest connections whose 201 rate reaches ``NEAR_BEST`` (90 %) of the best rate of the scan:
where the rate stops rising. A fixed count cannot say that: how many connections saturate the vote path
depends on the machine. (A rule on each doubling's gain was tried first: on a noisy machine one slow run
made it stop at c=4.) Then two overload runs, one right after the other so that all see the same machine:
``MULTIPLE`` (4) x the saturating count, where the targets are judged, and ``DEEP`` (16) x, an overload
whose queue would outgrow the shedding limit if nothing were shed.

Their clients honour ``Retry-After`` (``BENCH_RETRY_AFTER=1`` in scripts/bench/vote.lua: a 503 delays
one of the thread's next requests by a second), as the shedding contract asks of a client; a client
that retries at once instead turns every shed into more load (wrk's default). Printed and returned:
goodput (201s per second) against the best 201 rate of the saturated runs (the scan and ``earlier``),
and the p99 of the *accepted* votes, over the whole run and after its first ``SETTLE_S`` seconds (the
queue the burst built before the workers judged it a standing one). wrk's own latency mixes the fast
503s of load shedding (servicekit.shedding) with the 201s, so the accepted p99 comes from the
gateway's access log (ECS JSON lines: ``event.duration`` in ns, the status, the upstream's status)
for the lines the run appended; the gateway writes them in batches at most a second old, so the file
is read once it has stopped growing. Shed answers (503 from the service) are counted apart from the
gateway's own 503s (no upstream answered); their p99 shows how fast a client learns to retry.
Targets (issue 11): at 4x overload accepted p99 <= 250 ms and goodput >= 90 % of the saturated rate.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

TARGET_P99_MS, TARGET_GOODPUT = 250.0, 0.90
SCAN = (4, 8, 16, 32)
NEAR_BEST = 0.90
MULTIPLE, DEEP = 4, 16
SETTLE_S = 2
#: The gateway's access log is flushed at least every second (nginx/gateway.conf.template).
LOG_FLUSH_S = 1.0


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


def _next_offset(run: dict, offset: int, connections: int) -> int:
    """Where the next run's votes file lines start: after every line ``run`` used (its own count when wrk
    reported one; else its requests plus the lines each connection may have taken and not sent)."""
    return run.get("next_offset") or offset + run.get("requests", 0) + connections * 4


def saturating_connections(rates: dict[int, float]) -> int:
    """The connection count where the 201 rate stops rising: the fewest that reach ``NEAR_BEST`` of the best."""
    best = max(rates.values())
    return min(connections for connections, rate in rates.items() if rate >= NEAR_BEST * best)


def _appended_lines(access_log: Path, start: int, deadline_s: float = 5 * LOG_FLUSH_S) -> list[str]:
    """The lines written to ``access_log`` after byte ``start``, once the gateway has flushed them all: the
    file has not grown for longer than the gateway's flush interval (or ``deadline_s`` passed)."""
    deadline = time.monotonic() + deadline_s
    size, still_since = access_log.stat().st_size, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - still_since <= LOG_FLUSH_S:
        time.sleep(0.1)
        now = access_log.stat().st_size
        if now != size:
            size, still_since = now, time.monotonic()
    with open(access_log, errors="replace") as handle:
        handle.seek(start)
        return handle.read().splitlines()


def _overload_run(
    *,
    wrk: Callable[..., dict],
    url: str,
    env: dict,
    connections: int,
    saturated_rate: float,
    access_log: Path | None,
    duration: float,
    log: Callable[[str], None],
) -> dict:
    start = access_log.stat().st_size if access_log and access_log.exists() else 0
    result = _wrk(wrk, url, {**env, "BENCH_RETRY_AFTER": "1"}, connections, log)
    if "error" in result:
        return result
    if access_log and access_log.exists():
        result["gateway"] = access_figures(_appended_lines(access_log, start), "/api/v1/votes/")
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
    return result


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
    """The saturation scan and the overload runs (clients honouring ``Retry-After``), by name."""
    figures: dict[str, dict] = {}
    rates: dict[int, float] = {}
    for connections in SCAN:
        run = _wrk(wrk, url, {**env, "BENCH_OFFSET": str(offset)}, connections, log)
        figures[f"votes scan c={connections}"] = run
        offset = _next_offset(run, offset, connections)
        if "error" not in run:
            rates[connections] = run["accepted"] / duration
            log(f"  votes c={connections:<18} {rates[connections]:.0f} 201/s, p99 {run['p99_ms']} ms")
    if not rates:
        return figures
    saturating = saturating_connections(rates)
    saturated_rate = max([*rates.values(), *(run.get("accepted", 0) / duration for run in earlier)])
    log(f"  the 201 rate stops rising at c={saturating} (the fewest connections reaching {NEAR_BEST:.0%} of the best)")
    for multiple in (MULTIPLE, DEEP):
        connections = multiple * saturating
        result = _overload_run(
            wrk=wrk,
            url=url,
            env={**env, "BENCH_OFFSET": str(offset)},
            connections=connections,
            saturated_rate=saturated_rate,
            access_log=access_log,
            duration=duration,
            log=log,
        )
        offset = _next_offset(result, offset, connections)
        result["saturating_connections"], result["multiple"] = saturating, multiple
        figures[f"votes overload {multiple}x c={connections}"] = result
    return figures
