"""The commands of ``scripts/stack.py``: ``up [--detach]``, ``down``, ``status``, ``logs``, ``venv``.

``venv`` (and ``up`` on the system Python) only bootstraps the virtualenv (``venv.py``, stdlib only),
then ``up`` re-executes ``scripts/stack.py`` inside it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

from .api import AlreadyRunning, Stack
from .common import REPO, StackError
from .supervise import log_since_start, proc_start_time
from .venv import ensure_venv, in_venv

ENTRY_POINT = REPO / "scripts" / "stack.py"
UP_REPLICAS = 2  # web instances per service for `make up` (the test stack's default is 1)
COLORS = ["36", "32", "33", "35", "34", "96", "92", "93", "95", "94"]


def say(message: str) -> None:
    print(f"stack: {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)

    if args.command in ("up", "venv") and not in_venv():
        python = ensure_venv(log=say)
        if args.command == "venv":
            return 0
        os.execv(str(python), [str(python), str(ENTRY_POINT), *argv])
    if args.command == "venv":
        ensure_venv(log=say)
        return 0

    try:
        # `make up` runs two web instances of each service unless SERVICE_REPLICAS or <SERVICE>_REPLICAS say otherwise.
        stack = Stack(args.run_dir, default_replicas=UP_REPLICAS, log=say)
    except StackError as exc:
        print(f"stack: ERROR: {exc}", file=sys.stderr)
        return 1
    if args.command == "up":
        return cmd_up(stack, args.detach)
    if args.command == "down":
        return cmd_down(stack)
    if args.command == "status":
        return cmd_status(stack)
    return cmd_logs(stack)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Polls Platform process supervisor (make up / down / status / logs)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the platform (foreground unless --detach)")
    up.add_argument("--detach", action="store_true", help="return once everything is healthy")
    sub.add_parser("down", help="stop everything `up` started")
    sub.add_parser("status", help="show processes and health")
    sub.add_parser("logs", help="follow every process's log")
    sub.add_parser("venv", help="create/update the virtualenv only")
    for p in sub.choices.values():
        p.add_argument("--run-dir", type=Path, default=None, help="state folder (default $RUN_DIR or .run)")
    return parser


# ----- up -------------------------------------------------------------------------------------------


def cmd_up(stack: Stack, detach: bool) -> int:
    if stack.running_elsewhere():
        print(f"stack: {AlreadyRunning(stack)}")
        return 0
    stop_event = threading.Event()
    if not detach:
        stop_on_signals(stop_event)
    failed = start(stack, supervisor_pid=None if detach else os.getpid())
    if failed is not None:
        return failed
    if detach:
        print(stack.banner(), flush=True)
        return 0
    names = list(stack.processes)
    show_start_up(stack, names)
    follow_logs(stack, names, stop_event)
    keep_alive(stack, stop_event)
    return stop_all(stack)


def stop_on_signals(stop_event: threading.Event) -> None:
    """SIGINT (Ctrl-C) and SIGTERM (``make down``) end the foreground ``up``: it then stops every process."""

    def on_signal(signum, frame):  # noqa: ARG001
        stop_event.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def start(stack: Stack, supervisor_pid: int | None) -> int | None:
    """Start the stack; None when it runs, else the exit code of ``up`` (after printing why)."""
    try:
        stack.start(supervisor_pid=supervisor_pid)
    except AlreadyRunning as exc:
        print(f"stack: {exc}")
        return 0
    except StackError as exc:
        print(f"stack: ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        stack.stop()
        return 130
    return None


def show_start_up(stack: Stack, names: list[str]) -> None:
    """The end of what each process logged during start-up, then the banner last so it stays visible."""
    for name in names:
        for line in log_since_start(stack.processes[name]).splitlines()[1:][-3:]:
            print(f"{name} | {line}")
    print(stack.banner(), flush=True)


def keep_alive(stack: Stack, stop_event: threading.Event) -> None:
    """Until ``stop_event``: start again each process that exits, after a back-off.

    The back-off starts at 1 s and doubles up to 60 s, so one that cannot start does not spin; it resets
    once a restarted process stayed up for a minute.
    """
    delay: dict[str, float] = {}
    restart_at: dict[str, float] = {}
    last_start: dict[str, float] = {}
    while not stop_event.wait(0.5):
        now = time.monotonic()
        for name, proc in list(stack.processes.items()):
            if proc.alive():
                if name in delay and now - last_start.get(name, now) > 60:
                    del delay[name]
            elif name not in restart_at:
                delay[name] = min(delay.get(name, 0.5) * 2, 60.0)
                restart_at[name] = now + delay[name]
                code = proc.popen.returncode if proc.popen else "?"
                say(f"{name} exited (code {code}); restarting it in {delay[name]:.0f} s.")
            elif now >= restart_at[name]:
                del restart_at[name]
                last_start[name] = now
                try:
                    stack.revive([name])
                    say(f"{name} restarted.")
                except StackError as exc:
                    say(f"could not restart {name}: {exc}")


def stop_all(stack: Stack) -> int:
    print("\nstack: stopping every process ...", flush=True)
    leftovers = stack.stop()
    if leftovers:
        print(f"stack: ERROR: still alive after stop: {', '.join(leftovers)}", file=sys.stderr)
        return 1
    print("stack: stopped.")
    return 0


# ----- down, status, logs ---------------------------------------------------------------------------


def cmd_down(stack: Stack) -> int:
    state = stack.read_state()
    supervisor = state.get("supervisor_pid")
    if supervisor and supervisor != os.getpid() and proc_start_time(supervisor) == state.get("supervisor_start_time"):
        # A foreground `up` is supervising: ask it to stop its children, then make sure.
        with contextlib.suppress(ProcessLookupError):
            os.kill(supervisor, signal.SIGTERM)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and proc_start_time(supervisor) is not None:
            time.sleep(0.2)
    procs = {name: p for name, p in stack.recorded_processes().items() if p.alive()}
    if not procs:
        stack.stop()  # forget a stale stack.json
        print(f"stack: stopped the foreground `up` (pid {supervisor})" if supervisor else "stack: nothing running")
        return 0
    leftovers = stack.stop()
    if leftovers:
        print(f"stack: ERROR: could not stop {', '.join(leftovers)}", file=sys.stderr)
        return 1
    print(f"stack: stopped {len(procs)} processes ({', '.join(procs)}).")
    return 0


def cmd_status(stack: Stack) -> int:
    for line in stack.status_lines():
        print(line)
    return 0


def cmd_logs(stack: Stack) -> int:
    names = list(stack.recorded_processes()) or sorted(p.stem for p in stack.logs_dir.glob("*.log"))
    if not names:
        print(f"stack: no logs in {stack.logs_dir}")
        return 1
    for name in names:
        print(f"{name} | ...")
        print(stack.tail(name, 10))
    stop_event = threading.Event()
    follow_logs(stack, names, stop_event)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        stop_event.set()
    return 0


def follow_logs(stack: Stack, names: list[str], stop_event: threading.Event, from_end: bool = True) -> None:
    """Print new lines of each process's log with a coloured ``name |`` prefix until ``stop_event``."""
    width = max(len(n) for n in names)
    tty = sys.stdout.isatty()
    lock = threading.Lock()

    def follow(index: int, name: str) -> None:
        path = stack.logs_dir / f"{name}.log"
        prefix = f"{name:<{width}} | "
        if tty:
            prefix = f"\033[{COLORS[index % len(COLORS)]}m{prefix}\033[0m"
        while not path.exists() and not stop_event.is_set():
            time.sleep(0.2)
        with open(path, errors="replace") as handle:
            if from_end:
                handle.seek(0, os.SEEK_END)
            buffer = ""
            while not stop_event.is_set():
                chunk = handle.readline()
                if not chunk:
                    time.sleep(0.2)
                    continue
                buffer += chunk
                if buffer.endswith("\n"):
                    with lock:
                        sys.stdout.write(prefix + buffer)
                        sys.stdout.flush()
                    buffer = ""

    for i, name in enumerate(names):
        threading.Thread(target=follow, args=(i, name), daemon=True).start()
