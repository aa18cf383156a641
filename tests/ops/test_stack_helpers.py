"""The supervisor's building blocks, without a platform: process groups, PIDs, URLs, .env parsing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from scripts.platform_stack import (
    Running,
    Stack,
    effective_env,
    group_members,
    mask_url,
    postgres_target,
    proc_start_time,
    read_dotenv,
    stop_processes,
)


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
