#!/usr/bin/env python3
"""Release one service on the native stack: a canary (or blue-green) switch with automatic rollback.

    make release SERVICE=votes                      # canary: 10 %, 25 %, 50 %, 100 % of the traffic
    make release SERVICE=votes STRATEGY=blue-green  # all traffic at once, the old instance kept as fallback
    python scripts/release.py votes --steps 10,50,100 --hold 5 --max-error-ratio 0.01 [--target MOD:APP]

What a release does, on a running ``make up`` (or the test stack):

1. starts a *new* web instance of the service beside the running one (the code as it is on disk now,
   release label ``RELEASE``; port = the service's port + 10) and waits until it answers;
2. shifts the gateway's traffic to it step by step: the upstream gets both servers with weights and
   Nginx reloads gracefully (new workers take new requests, old ones finish theirs: nothing fails);
3. after each step it holds ``--hold`` seconds and reads the new instance's own ``/metrics``: when its
   5xx share of the step's requests exceeds ``--max-error-ratio``, it **rolls back** (all traffic to the
   old instance, the new one stopped) and exits 1;
4. promoted: with the new instance serving everything, the old instance is restarted (it loads the new
   code), traffic goes back to it, and the new instance stops. The stack is as before, on the new code.

The instance under test takes requests only through the gateway's weights, so a bad release (say one
that answers 500) costs at most its share of the requests of one step: the clients see those errors,
nothing is written for them, and every request the old instance served is untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.platform_stack import (  # noqa: E402
    ProcessSpec,
    Running,
    Stack,
    StackError,
    child_pids,
    group_members,
    http_status,
    stop_processes,
)

CANARY_PORT_OFFSET = 10


class ReleaseFailed(RuntimeError):
    """The new instance failed its objectives; the traffic is back on the old one."""


@dataclass
class StepResult:
    percent: int
    requests: int
    errors: int

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass
class Release:
    stack: Stack
    service: str
    label: str
    steps: list[int]
    hold: float
    max_error_ratio: float
    target: str | None = None  # another WSGI application for the new instance (tests: a bad build)
    log: Callable[[str], None] = print
    results: list[StepResult] = field(default_factory=list)
    canary: Running | None = None

    @property
    def stable_port(self) -> int:
        return self.stack.ports[self.service]

    @property
    def canary_port(self) -> int:
        return self.stable_port + CANARY_PORT_OFFSET

    # --- the new instance ---------------------------------------------------------------------------
    def canary_spec(self) -> ProcessSpec:
        stable = self.stack._specs[f"{self.service}.web"]
        env = {
            **stable.env,
            "WEB_BIND": f"127.0.0.1:{self.canary_port}",
            "RELEASE": self.label,
            "PROMETHEUS_MULTIPROC_DIR": str(self.stack.run_dir / "prometheus" / f"{self.service}-canary"),
        }
        command = list(stable.command)
        if self.target:
            command[-1] = self.target
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
        return ProcessSpec(
            f"{self.service}.web.canary",
            command,
            stable.cwd,
            env,
            health_url=f"http://127.0.0.1:{self.canary_port}/healthz",
        )

    def start_canary(self) -> None:
        spec = self.canary_spec()
        metrics = Path(spec.env["PROMETHEUS_MULTIPROC_DIR"])
        if metrics.exists():
            for stale in metrics.iterdir():
                stale.unlink()
        metrics.mkdir(parents=True, exist_ok=True)
        if http_status(spec.health_url, timeout=0.5) is not None:
            raise StackError(f"port {self.canary_port} is in use: another release is running")
        self.canary = self.stack.launch(spec)
        self.stack.processes.pop(spec.name, None)  # not the stack's own: the release stops it
        deadline = time.monotonic() + 60
        while http_status(spec.health_url, timeout=1.0) != 200:
            if not self.canary.leader_alive() or time.monotonic() > deadline:
                log = self.canary.log
                self.stop_canary()
                raise StackError(f"the new instance did not start; see {log}")
            time.sleep(0.2)

    def stop_canary(self) -> None:
        if self.canary is not None:
            stop_processes([self.canary])
            self.canary = None

    def canary_counts(self) -> tuple[int, int]:
        """(requests, 5xx answers) the new instance has served so far, from its own /metrics."""
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(f"http://127.0.0.1:{self.canary_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        requests = errors = 0
        for family in text_string_to_metric_families(text):
            if family.name != "http_requests":
                continue
            for sample in family.samples:
                if not sample.name.endswith("_total") or sample.labels.get("route", "").startswith("/metrics"):
                    continue
                requests += int(sample.value)
                if sample.labels.get("status", "").startswith("5"):
                    errors += int(sample.value)
        return requests, errors

    # --- the gateway ----------------------------------------------------------------------------------
    def route(self, canary_percent: int) -> None:
        """Send ``canary_percent`` % of the service's traffic to the new instance; reload the gateway gracefully."""
        if canary_percent <= 0:
            weights = None
        elif canary_percent >= 100:
            weights = {self.service: {self.canary_port: 1}}
        else:
            weights = {self.service: {self.stable_port: 100 - canary_percent, self.canary_port: canary_percent}}
        reload_gateway(self.stack, weights)

    # --- the procedure --------------------------------------------------------------------------------
    def run(self) -> list[StepResult]:
        self.log(f"release {self.label} of {self.service}: starting the new instance on :{self.canary_port}")
        self.start_canary()
        try:
            for percent in self.steps:
                before = self.canary_counts()
                self.route(percent)
                time.sleep(self.hold)
                after = self.canary_counts()
                result = StepResult(percent, after[0] - before[0], after[1] - before[1])
                self.results.append(result)
                self.log(
                    f"release: {percent:3d} % -> {result.requests} requests on the new instance, "
                    f"{result.errors} answered 5xx ({result.error_ratio:.1%})"
                )
                if result.error_ratio > self.max_error_ratio:
                    raise ReleaseFailed(
                        f"{result.error_ratio:.1%} 5xx at {percent} % (objective <= {self.max_error_ratio:.1%})"
                    )
            self.log("release: objectives held; restarting the old instance on the new code")
            restart_stable(self.stack, self.service)
            self.route(0)
            self.log(f"release {self.label} of {self.service}: promoted")
            return self.results
        except BaseException as exc:
            self.route(0)
            self.log(f"release {self.label} of {self.service}: rolled back ({exc})")
            raise
        finally:
            self.stop_canary()


def gateway_process(stack: Stack) -> Running:
    return stack.processes.get("gateway") or stack.recorded_processes()["gateway"]


def reload_gateway(stack: Stack, weights: dict[str, dict[int, int]] | None) -> None:
    """Re-render the gateway with ``weights`` (None: one server per service), check it, reload Nginx and
    wait until the workers of the old configuration have finished their requests."""
    stack.write_gateway_config(weights)
    master = gateway_process(stack).pid
    old_workers = set(child_pids(master))
    os.kill(master, signal.SIGHUP)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        current = set(child_pids(master))
        if current and not (current & old_workers):
            return
        time.sleep(0.05)
    raise StackError("gateway: the old workers did not finish within 30 s")


def restart_stable(stack: Stack, service: str) -> None:
    """Restart the service's own web instances (they carry no traffic now) and wait until each answers."""
    for instance, name in enumerate(stack.web_instances(service), start=1):
        restart_instance(stack, name, stack.service_url(service, instance))


def restart_instance(stack: Stack, name: str, url: str) -> None:
    if name in stack.processes:  # this process owns the stack (the test session)
        stack.restart(name)
        return
    # A `make up` owns it: stop it and let its supervisor start it again (a detached stack has none).
    recorded = stack.recorded_processes()[name]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(recorded.pid, signal.SIGTERM)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        current = stack.recorded_processes().get(name)
        if current and current.pid != recorded.pid and http_status(f"{url}/healthz") == 200:
            return
        if not stack.supervisor_alive() and not group_members(recorded.pid):
            stack.processes[name] = stack.launch(stack._specs[name])
            stack.write_state()
            stack.wait_healthy(names=[name])
            return
        time.sleep(0.25)
    raise StackError(f"{name} did not come back within 90 s")


def attach(run_dir: Path) -> Stack:
    """The running stack recorded in ``run_dir`` (its ports, processes and process specs)."""
    state = Stack(run_dir, log=lambda m: None).read_state()
    if not state.get("processes"):
        raise StackError(f"no running stack in {run_dir} (make up first)")
    stack = Stack(run_dir, ports=state["ports"], replicas=state.get("replicas"), log=lambda m: None)
    stack._specs = stack.specs()
    return stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("service", choices=["polls", "choices", "votes"])
    parser.add_argument("--strategy", choices=["canary", "blue-green"], default="canary")
    parser.add_argument("--steps", help="canary percentages, e.g. 10,25,50,100 (default)")
    parser.add_argument("--hold", type=float, default=5.0, help="seconds at each step (default 5)")
    parser.add_argument("--max-error-ratio", type=float, default=0.01, help="5xx share that rolls back (0.01)")
    parser.add_argument("--label", default=os.environ.get("RELEASE") or time.strftime("r%Y%m%d%H%M%S"))
    parser.add_argument("--target", help="WSGI application of the new instance (default: the service's own)")
    parser.add_argument("--run-dir", type=Path, default=Path(os.environ.get("RUN_DIR") or REPO / ".run"))
    args = parser.parse_args(argv)
    steps = [100] if args.strategy == "blue-green" else [int(s) for s in (args.steps or "10,25,50,100").split(",")]
    try:
        stack = attach(args.run_dir)
        Release(stack, args.service, args.label, steps, args.hold, args.max_error_ratio, args.target).run()
    except ReleaseFailed:
        return 1
    except StackError as exc:
        print(f"release: ERROR: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
