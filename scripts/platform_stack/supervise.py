"""Running processes: launch one in its own process group, tell ours from a recycled PID, stop groups.

Every process runs in a session (process group) of its own and writes ``RUN_DIR/logs/<name>.log``;
it is stopped by its group, never by name. Stdlib only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .common import StackError, http_status

if TYPE_CHECKING:
    from .specs import ProcessSpec


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


def launch(spec: ProcessSpec, logs_dir: Path) -> Running:
    """Start ``spec`` in its own process group, appending its output to ``logs_dir/<name>.log``."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = logs_dir / f"{spec.name}.log"
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
    return Running(spec.name, popen.pid, proc_start_time(popen.pid), log_path, spec.command, popen)


def log_since_start(proc: Running) -> str:
    """What ``proc`` logged since its latest ``starting <name>`` line (empty when there is no log)."""
    try:
        text = proc.log.read_text(errors="replace")
    except OSError:
        return ""
    return text[text.rfind(f"starting {proc.name}") :]


def tail(proc: Running, lines: int = 20) -> str:
    """The last ``lines`` lines ``proc`` logged since it started, indented for an error message."""
    return "\n".join("  " + line for line in log_since_start(proc).splitlines()[-lines:])


def _exited_during_start_up(proc: Running) -> StackError:
    return StackError(f"{proc.name} exited during start-up; last lines of {proc.log}:\n" + tail(proc))


def wait_healthy(
    specs: dict[str, ProcessSpec], processes: dict[str, Running], timeout: float, names: list[str] | None
) -> None:
    """Wait until every web process and the gateway answer /healthz and workers say they are ready."""
    specs = {n: s for n, s in specs.items() if names is None or n in names}
    pending = {n for n, s in specs.items() if s.health_url or s.ready_marker}
    deadline = time.monotonic() + timeout
    while pending:
        for name in sorted(pending):
            proc = processes[name]
            if not proc.leader_alive():
                raise _exited_during_start_up(proc)
            spec = specs[name]
            healthy = bool(spec.health_url) and http_status(spec.health_url, timeout=1.0) == 200
            ready = bool(spec.ready_marker) and spec.ready_marker in log_since_start(proc)
            if healthy or ready:
                pending.discard(name)
        for name, proc in processes.items():
            if (names is None or name in names) and not proc.leader_alive():
                raise _exited_during_start_up(proc)
        if not pending:
            break
        if time.monotonic() > deadline:
            raise StackError(f"not healthy after {timeout:.0f} s: {', '.join(sorted(pending))}")
        time.sleep(0.25)


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


def kill_group(proc: Running, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to the whole process group of ``proc``; after SIGKILL/SIGTERM wait (30 s) until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    if sig in (signal.SIGKILL, signal.SIGTERM):
        deadline = time.monotonic() + 30
        while proc.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
