"""A real HTTP server standing in for another service in a test (replica misses, reconciliation).

The code under test talks to it through the real ``servicekit.http.ServiceClient`` (real sockets,
timeouts, retries and breaker), so no client code is mocked::

    from servicekit.testing_upstream import FakeUpstream

    @pytest.fixture
    def fake_polls(settings):
        with FakeUpstream() as upstream:
            settings.POLLS_INTERNAL_URL = upstream.url
            yield upstream

    def test_miss(fake_polls):
        fake_polls.respond("/internal/polls/<id>/", {"id": "<id>", "owner_id": 7, "status": "draft"})
        ...
        assert fake_polls.requests[0].authorization.startswith("Service ")

Paths without a response answer 404 (problem+json); ``fail(path, status=503)`` makes one answer an
error, ``fail_next(path, 503, 500)`` only its next requests (one status each: retries), ``stop()`` closes
the socket (connection refused).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake upstream received."""

    method: str
    path: str
    headers: Message  # the request's own headers: names match in any case

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")


def _failure_body(status: int) -> dict[str, Any]:
    """The body of the canned error answers (``fail``, ``fail_next``)."""
    return {"status": status, "title": "Failure."}


class FakeUpstream:
    """A threaded HTTP server on 127.0.0.1 (free port) answering canned JSON per path."""

    def __init__(self) -> None:
        self.responses: dict[str, tuple[int, Any]] = {}
        self.next_failures: dict[str, list[int]] = {}
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                with upstream._lock:
                    upstream.requests.append(RecordedRequest("GET", path, self.headers))
                    status, body = upstream.responses.get(path, (404, {"status": 404, "title": "Not found."}))
                    if failures := upstream.next_failures.get(path):
                        status = failures.pop(0)
                        body = _failure_body(status)
                self._answer(status, body)

            def _answer(self, status: int, body: Any) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # shutdown() waits until serve_forever next looks at its flag: every poll_interval (0.5 s by default).
        # Two upstreams per polls test stopped at teardown cost a second a test at the default.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._running = False

    @property
    def url(self) -> str:
        """Base URL (``http://127.0.0.1:<port>``) to put in a ``*_INTERNAL_URL`` setting."""
        return f"http://127.0.0.1:{self._server.server_port}"

    def respond(self, path: str, body: Any, *, status: int = 200) -> None:
        """Answer GET ``path`` with ``body`` as JSON and ``status``."""
        with self._lock:
            self.responses[path] = (status, body)

    def fail(self, path: str, *, status: int = 503) -> None:
        """Answer GET ``path`` with an error status."""
        self.respond(path, _failure_body(status), status=status)

    def fail_next(self, path: str, *statuses: int) -> None:
        """Answer the next requests to ``path`` with these error statuses, one each, then as before."""
        with self._lock:
            self.next_failures.setdefault(path, []).extend(statuses)

    def calls_to(self, path: str) -> int:
        """How many requests ``path`` received."""
        with self._lock:
            return sum(1 for request in self.requests if request.path == path)

    def start(self) -> FakeUpstream:
        """Serve in a background thread."""
        if not self._running:
            self._thread.start()
            self._running = True
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (later connections are refused)."""
        if self._running:
            self._server.shutdown()
            self._running = False
        self._server.server_close()

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
