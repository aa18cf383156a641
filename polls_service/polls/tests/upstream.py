"""A gated service (vote_service or choice_service) as a real HTTP server, for polls' tests.

``FakeUpstream`` (servicekit) answers canned GETs; this one also answers the gate command
``PUT /internal/polls/{id}/state/`` the way the real gates do: the state is applied by version (a
stale command changes nothing and answers the state held), and with ``min_choices`` it refuses
(409 ``not-enough-choices``) when the poll has fewer choices than that. The code under test talks
to it through the real ``servicekit.http.ServiceClient``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from servicekit.testing_upstream import FakeUpstream, RecordedRequest

STATE_PATH = re.compile(r"^/internal/polls/(?P<poll>[0-9a-f-]{36})/state/$")


class GateUpstream(FakeUpstream):
    """``FakeUpstream`` plus the gate: ``held`` (poll id -> last applied command), ``commands``
    (every PUT body received, in order) and ``choices`` (poll id -> how many choices it has)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: dict[str, dict[str, Any]] = {}
        self.commands: list[dict[str, Any]] = []
        self.choices: dict[str, int] = {}
        upstream = self
        canned_get = self._server.RequestHandlerClass

        class Handler(canned_get):  # type: ignore[misc, valid-type]
            def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                command = json.loads(self.rfile.read(length) or b"null")
                with upstream._lock:
                    upstream.requests.append(RecordedRequest("PUT", path, self.headers))
                    upstream.commands.append({"path": path, **command})
                    status, body = upstream._put(path, command)
                self._answer(status, body)  # JSON, as FakeUpstream answers a GET

        self._server.RequestHandlerClass = Handler

    def _put(self, path: str, command: dict[str, Any]) -> tuple[int, Any]:
        if path in self.responses:  # respond()/fail() override the gate
            return self.responses[path]
        match = STATE_PATH.match(path)
        if match is None:
            return 404, {"status": 404, "title": "Not found."}
        poll = match["poll"]
        count = self.choices.get(poll, 0)
        held = self.held.get(poll)
        newer = held is None or command["version"] > held["version"]
        wants = command.get("min_choices") if command["status"] == "open" else None
        if newer and wants is not None and count < wants:
            return 409, {
                "type": "https://polls.example/problems/not-enough-choices",
                "title": "Conflict.",
                "status": 409,
                "detail": f"The poll has {count} choices.",
                "code": "not-enough-choices",
                "choices": count,
            }
        if newer:
            held = self.held[poll] = {k: command[k] for k in ("version", "owner_id", "status", "closes_at")}
        return 200, {"poll_id": poll, "version": held["version"], "status": held["status"], "choices": count}

    def state_path(self, poll: Any) -> str:
        return f"/internal/polls/{poll.id}/state/"

    def commands_for(self, poll: Any) -> list[dict[str, Any]]:
        """The gate commands received for ``poll``, oldest first (without ``path``)."""
        path = self.state_path(poll)
        with self._lock:
            return [{k: v for k, v in c.items() if k != "path"} for c in self.commands if c["path"] == path]
