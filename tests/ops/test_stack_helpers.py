"""The supervisor's building blocks, without a platform: process groups, PIDs, URLs, .env parsing."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from scripts.platform_stack import (
    Running,
    Stack,
    effective_env,
    free_port,
    group_members,
    mask_url,
    postgres_target,
    proc_start_time,
    read_dotenv,
    stop_processes,
)
from scripts.platform_stack.common import DERIVED_PORT_MARGIN, FREE_PORT_FLOOR, ephemeral_port_range, port_bindable


def spawn_group(script: str) -> Running:
    popen = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    return Running("test", popen.pid, proc_start_time(popen.pid), Path("/dev/null"), [], popen)


def wait_members(pgid: int, count: int) -> list[int]:
    deadline = time.monotonic() + 5
    while len(members := group_members(pgid)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return members


def test_stop_processes_leaves_no_member_of_the_group() -> None:
    proc = spawn_group("sleep 300 & sleep 300 & wait")
    members = wait_members(proc.pid, 3)
    assert len(members) == 3
    assert stop_processes([proc], timeout=5) == []
    assert group_members(proc.pid) == []


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    proc = spawn_group("trap '' TERM; sleep 300 & trap '' TERM; wait")
    assert len(wait_members(proc.pid, 2)) == 2
    started = time.monotonic()
    assert stop_processes([proc], timeout=1) == []
    assert group_members(proc.pid) == []
    assert time.monotonic() - started < 15


def test_a_recycled_pid_is_not_ours() -> None:
    proc = spawn_group("sleep 300")
    other = Running("other", proc.pid, (proc.start_time or 0) + 1, Path("/dev/null"))
    assert proc.alive()
    assert not other.leader_alive()
    stop_processes([proc], timeout=5)
    assert not proc.alive()


def test_stop_reads_pids_recorded_by_another_process(tmp_path: Path) -> None:
    proc = spawn_group("sleep 300 & wait")
    wait_members(proc.pid, 2)
    stack = Stack(tmp_path, env={"RUN_DIR": str(tmp_path)}, log=lambda m: None)
    stack.processes = {"sleeper": proc}
    stack.write_state()
    fresh = Stack(tmp_path, env={"RUN_DIR": str(tmp_path)}, log=lambda m: None)
    assert fresh.running_elsewhere() == ["sleeper"]
    assert fresh.stop(timeout=5) == []
    assert group_members(proc.pid) == []
    assert not (tmp_path / "stack.json").exists()
    proc.popen.wait(timeout=5)


def test_mask_url_hides_the_password_only() -> None:
    assert mask_url("amqp://guest:secret@127.0.0.1:5672/vh") == "amqp://guest:***@127.0.0.1:5672/vh"
    assert mask_url("redis://127.0.0.1:6379/9") == "redis://127.0.0.1:6379/9"


def test_postgres_target_parses_the_url() -> None:
    assert postgres_target("postgres://u:p%40ss@db.example:5433/polls") == {
        "host": "db.example",
        "port": "5433",
        "user": "u",
        "password": "p@ss",
        "dbname": "polls",
    }
    assert postgres_target("sqlite:////tmp/x.sqlite3") is None


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nexport A='one'\nB=\"two\"\n\nC=three=3\nnot a line\n")
    assert read_dotenv(dotenv) == {"A": "one", "B": "two", "C": "three=3"}
    monkeypatch.setenv("POLLS_PORT", "9001")
    merged = effective_env({"POLLS_PORT": None, "X": "y"})
    assert "POLLS_PORT" not in merged and merged["X"] == "y"


def test_ports_and_internal_urls_follow_the_environment(tmp_path: Path) -> None:
    stack = Stack(
        tmp_path,
        env={"POLLS_PORT": "9101", "CHOICE_PORT": "9102", "VOTE_PORT": "9103", "GATEWAY_PORT": "9180"},
        log=lambda m: None,
    )
    assert stack.ports == {"polls": 9101, "choices": 9102, "votes": 9103, "gateway": 9180}
    assert stack.env["POLLS_INTERNAL_URL"] == "http://127.0.0.1:9101"
    assert stack.env["VOTE_INTERNAL_URL"] == "http://127.0.0.1:9103"
    assert stack.env["JWKS_URL"] == "http://127.0.0.1:9101/.well-known/jwks.json"
    assert stack.gateway_url == "http://127.0.0.1:9180"


def test_cli_down_with_nothing_running_is_a_clean_no_op(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "scripts/stack.py", "down", "--run-dir", str(tmp_path)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "nothing running" in result.stdout


def test_the_virtualenv_is_made_from_venv_python_when_it_is_set(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from scripts.platform_stack import venv

    chosen = tmp_path / "python-of-choice"  # neither the system's Python nor this one: only VENV_PYTHON names it
    monkeypatch.setenv("VENV_PYTHON", str(chosen))
    assert venv.base_python() == chosen


def test_the_system_python_is_chosen_only_when_it_can_make_a_virtualenv(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from scripts.platform_stack import venv

    monkeypatch.delenv("VENV_PYTHON", raising=False)
    no_venv = tmp_path / "python3.11"  # a "3.11" that cannot import venv: the running Python is used instead
    no_venv.write_text(f"#!/bin/sh\nexec {sys.executable} -I -c 'import sys; sys.exit(1)'\n")
    no_venv.chmod(0o755)
    monkeypatch.setattr(venv, "SYSTEM_PYTHON", no_venv)
    assert venv.base_python() == Path(sys.executable)
    able = tmp_path / "python3.11-able"  # this 3.11 under another name, with venv and ensurepip: chosen
    able.symlink_to(Path(sys._base_executable).resolve())
    monkeypatch.setattr(venv, "SYSTEM_PYTHON", able)
    assert venv.base_python() == able
    monkeypatch.setattr(venv, "SYSTEM_PYTHON", tmp_path / "absent")
    assert venv.base_python() == Path(sys.executable)


def test_venv_base_reads_the_interpreter_a_virtualenv_was_made_from(tmp_path: Path) -> None:
    from scripts.platform_stack import venv

    made = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(made)], check=True, timeout=120)
    base = venv.venv_base(made)
    assert base is not None and Path(base).resolve() == Path(sys._base_executable).resolve()
    assert venv.venv_base(tmp_path / "none") is None


def _recording_python(path: Path, calls: Path, fail_uv: bool) -> Path:
    """A stand-in ``python`` that records each command line and fails ``-m uv ...`` when asked to."""
    path.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n' + ('[ "$2" = uv ] && exit 1\n' if fail_uv else "") + "exit 0\n"
    )
    path.chmod(0o755)
    return path


def test_requirements_are_installed_by_uv_once_pip_has_installed_it(tmp_path: Path) -> None:
    from scripts.platform_stack import venv

    calls = tmp_path / "calls"
    python = _recording_python(tmp_path / "python", calls, fail_uv=False)
    venv.install_requirements(python, log=lambda _: None)
    lines = calls.read_text().splitlines()
    assert lines[0].startswith("-m pip install") and lines[0].endswith(str(venv.INSTALLER))
    assert [line.split(" -q ")[-1] for line in lines[1:]] == [
        f"-r {venv.REPO / 'requirements' / 'dev.txt'}",
        f"--no-deps -e {venv.REPO / 'servicekit'}",
    ]
    assert all(line.startswith(f"-m uv pip install --python {python}") for line in lines[1:])


def test_pip_installs_everything_when_uv_fails(tmp_path: Path) -> None:
    from scripts.platform_stack import venv

    calls = tmp_path / "calls"
    python = _recording_python(tmp_path / "python", calls, fail_uv=True)
    said: list[str] = []
    venv.install_requirements(python, log=said.append)
    lines = calls.read_text().splitlines()
    assert lines[1].startswith("-m uv pip install")  # tried first, failed
    assert [line.split(" -q ")[-1] for line in lines[2:]] == [
        f"-r {venv.REPO / 'requirements' / 'dev.txt'}",
        f"--no-deps -e {venv.REPO / 'servicekit'}",
    ]
    assert all(line.startswith("-m pip install") for line in lines[2:])
    assert said and "with pip" in said[0]


# ----- free_port: ports for servers started later, outside the kernel's ephemeral range --------------


def test_free_port_lies_below_the_ephemeral_range_with_room_for_derived_ports() -> None:
    low, _ = ephemeral_port_range()
    for _ in range(20):
        port = free_port()
        assert FREE_PORT_FLOOR <= port < low - DERIVED_PORT_MARGIN
        assert port + 363 < low  # the stack's HTTPS port, derived from the gateway's
        assert port_bindable(port)


def test_free_port_skips_a_port_held_by_a_clients_connection() -> None:
    """The CI failure: a port no one listened on, taken as the local port of an outgoing connection."""
    base = free_port()
    with socket.socket() as listener, socket.socket() as client:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client.bind(("127.0.0.1", base))
        client.connect(listener.getsockname())
        assert not port_bindable(base)
        # A range of two candidates: `base`, held by the connection, and `base + 1`.
        only_two = (base + DERIVED_PORT_MARGIN + 2, 60999)
        assert {free_port(floor=base, ephemeral=only_two) for _ in range(20)} == {base + 1}


def test_free_port_takes_the_kernels_pick_when_the_ephemeral_range_leaves_no_room() -> None:
    port = free_port(ephemeral=(1024, 65535))
    assert port_bindable(port)


def test_ephemeral_port_range_reads_the_kernel_setting(tmp_path: Path) -> None:
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("40000\t50000\n")
    assert ephemeral_port_range(setting) == (40000, 50000)
    assert ephemeral_port_range(tmp_path / "missing") == (32768, 60999)
