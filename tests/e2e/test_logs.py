"""ELK-ready logs of the running stack (issue 10): ECS JSON everywhere, one trace id per vote, no secrets.

One test, against the session's stack, reading the log files the supervisor writes
(``RUN_DIR/logs/<process>.log``, see scripts/stack.py):

- a real user registers, logs in and refreshes its tokens through the gateway, then votes with its
  own sampled ``traceparent`` and ``X-Request-ID``;
- the trace id of that vote is in the gateway's access line, vote_service's access line (with the
  request id, the user id, method, path, status and duration in ns) and in choice_service's worker
  line that applies the vote's event;
- every line of every process's log (web servers and their workers, Celery workers and beat, the
  gateway) is an ECS JSON object with the required fields -- except the supervisor's own
  ``=== ... starting`` marker and nginx's error log, which Filebeat parses (ops/logging/filebeat.yml);
- no log file of the stack holds the password, any of the tokens, the service credential, or anything
  shaped like a JWT.

Logs reach the files asynchronously (the gateway, three services, their workers): the test polls
them with a deadline.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest
import requests

from scripts.loadgen import Platform
from scripts.platform_stack import Stack
from servicekit.testing import ecs_fields

pytestmark = pytest.mark.stack

REQUIRED = ("@timestamp", "log.level", "message", "ecs.version", "log.logger", "service.name")
SUPERVISOR_MARKER = re.compile(r"^=== (\S+) starting \S+$")
# Log files outlive a session (the supervisor appends): only what this session's processes wrote counts.
# Modules are imported at collection, before the session's stack starts.
SESSION_STARTED = time.time() - 1
# nginx's error log (warn and above; the gateway's stderr); Filebeat's dissect processor reads this shape.
NGINX_ERROR = re.compile(
    r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[(debug|info|notice|warn|error|crit|alert|emerg)\] \d+#\d+: "
)
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.")
HEX32, HEX16 = re.compile(r"^[0-9a-f]{32}$"), re.compile(r"^[0-9a-f]{16}$")


def session_lines(path: Path) -> list[str]:
    """The lines of one log file from the first process start of this test session on."""
    lines = path.read_text(errors="replace").splitlines()
    for index, line in enumerate(lines):
        marker = SUPERVISOR_MARKER.match(line)
        if marker and time.mktime(time.strptime(marker.group(1), "%Y-%m-%dT%H:%M:%S")) >= SESSION_STARTED:
            return lines[index:]
    return []


def entries(path: Path) -> list[dict]:
    """This session's JSON lines of one log file, flattened (other lines are checked by the test itself)."""
    found = []
    for line in session_lines(path):
        if line.startswith("{"):
            try:
                found.append(ecs_fields(json.loads(line)))
            except ValueError:
                continue
    return found


def wait_for_lines(stack: Stack, wanted: dict[str, dict[str, object]], timeout: float) -> dict[str, dict]:
    """For each ``process: {field: value}``, the first line of that process's log with those fields."""
    deadline = time.monotonic() + timeout
    found: dict[str, dict] = {}
    while True:
        for process, fields in wanted.items():
            if process not in found:
                for entry in entries(stack.logs_dir / f"{process}.log"):
                    if all(entry.get(k) == v for k, v in fields.items()):
                        found[process] = entry
                        break
        if len(found) == len(wanted) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_logs_are_ecs_json_carry_the_vote_trace_and_hold_no_secret(stack: Stack, gateway: requests.Session) -> None:
    platform = Platform(gateway_url=stack.gateway_url, run_dir=stack.run_dir, owner_id=7301)
    poll = platform.create_polls(1, choices=2, prefix="Logged poll")[0]

    # --- a real user's credentials, through the gateway -----------------------------------------------
    username, password = f"logs-{uuid.uuid4().hex[:12]}", f"pw-{uuid.uuid4().hex}"
    assert gateway.post("/api/v1/auth/register/", json={"username": username, "password": password}).status_code == 201
    pair = gateway.post("/api/v1/auth/token/", json={"username": username, "password": password})
    assert pair.status_code == 200, pair.text
    refreshed = gateway.post("/api/v1/auth/token/refresh/", json={"refresh": pair.json()["refresh"]})
    assert refreshed.status_code == 200, refreshed.text
    access = refreshed.json()["access"]
    me = gateway.get("/api/v1/auth/me/", headers={"Authorization": f"Bearer {access}"})
    assert me.status_code == 200, me.text
    user_id = str(me.json()["id"])
    platform.wait_warm([poll])

    # --- one vote with its own sampled trace and request id --------------------------------------------
    trace_id, request_id = uuid.uuid4().hex, f"logs-{uuid.uuid4().hex}"
    vote = gateway.post(
        "/api/v1/votes/",
        json={"poll": poll.id, "choice": poll.choices[0]},
        headers={
            "Authorization": f"Bearer {access}",
            "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
            "X-Request-ID": request_id,
        },
    )
    assert vote.status_code == 201, vote.text

    lines = wait_for_lines(
        stack,
        {
            "gateway": {"http.request.id": request_id},
            "votes.web": {"http.request.id": request_id, "log.logger": "servicekit.access"},
            # choice_service's consumer applies vote.cast inside the event's span (servicekit.events).
            "choices.worker": {"trace.id": trace_id},
        },
        timeout=20,
    )
    edge = lines.get("gateway")
    assert edge, f"no gateway access line for request {request_id}"
    assert edge["trace.id"] == trace_id and edge["http.response.status_code"] == 201
    assert edge["url.path"] == "/api/v1/votes/" and edge["http.request.method"] == "POST"
    assert edge["service.name"] == "gateway" and edge["event.dataset"] == "gateway.access"
    assert isinstance(edge["event.duration"], int) and edge["event.duration"] >= 0
    served = lines.get("votes.web")
    assert served, f"no vote_service access line for request {request_id}"
    assert served["trace.id"] == trace_id and HEX16.match(served["span.id"])
    assert served["user.id"] == user_id and served["service.name"] == "votes"
    assert served["http.request.method"] == "POST" and served["url.path"] == "/api/v1/votes/"
    assert served["http.response.status_code"] == 201 and served["event.dataset"] == "votes.access"
    assert isinstance(served["event.duration"], int) and served["event.duration"] > 0  # nanoseconds
    assert lines.get("choices.worker"), f"choice_service logged no line of trace {trace_id} (the event applied)"

    # --- every process, every line: ECS JSON ----------------------------------------------------------------
    logs = sorted(stack.logs_dir.glob("*.log"))
    expected = {f"{s}.{role}" for s in ("polls", "choices", "votes") for role in ("web", "worker", "beat")}
    assert expected | {"gateway"} <= {p.stem for p in logs}
    problems: list[str] = []
    for path in logs:
        json_lines = 0
        for number, line in enumerate(session_lines(path), 1):
            if not line.strip() or SUPERVISOR_MARKER.match(line):
                continue
            if path.stem == "gateway" and NGINX_ERROR.match(line):
                continue
            try:
                entry = ecs_fields(json.loads(line))
            except ValueError:
                problems.append(f"{path.name}:+{number}: not JSON: {line[:160]}")
                continue
            json_lines += 1
            missing = [field for field in REQUIRED if field not in entry]
            if missing or not str(entry.get("@timestamp", "")).startswith("20"):
                problems.append(f"{path.name}:+{number}: missing {missing}: {line[:160]}")
            elif path.stem != "gateway" and entry["service.name"] != path.stem.split(".")[0]:
                problems.append(f"{path.name}:+{number}: service.name {entry['service.name']!r}")
            if "trace.id" in entry and not HEX32.match(str(entry["trace.id"])):
                problems.append(f"{path.name}:+{number}: trace.id {entry['trace.id']!r}")
        if json_lines == 0 and path.stem in expected:
            problems.append(f"{path.name}: no log line at all")
    assert not problems, f"{len(problems)} log lines are not ECS JSON:\n" + "\n".join(problems[:20])

    # --- the whole run's logs: no credential ---------------------------------------------------------------
    secrets = {
        "the password": password,
        "the first access token": pair.json()["access"],
        "the first refresh token": pair.json()["refresh"],
        "the refreshed access token": access,
        "the rotated refresh token": refreshed.json()["refresh"],
        # A line of a service's private key (the short-lived service tokens are JWTs: the check below).
        "a service's private key": (stack.run_dir / "secrets" / "service_keys" / "votes.pem")
        .read_text()
        .splitlines()[1],
    }
    for path in sorted(stack.run_dir.rglob("*.log")):
        text = path.read_text(errors="replace")
        leaked = [name for name, secret in secrets.items() if secret in text]
        assert not leaked, f"{path}: holds {', '.join(leaked)}"
        jwt = JWT.search("\n".join(session_lines(path)) if path.parent == stack.logs_dir else text)
        assert jwt is None, f"{path}: holds something shaped like a JWT: {jwt.group(0)[:40]}..."
