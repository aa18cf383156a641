"""An OTLP/HTTP trace receiver in the test process: what a collector's ``otlphttp`` receiver does, no more.

    with OtlpReceiver() as receiver:               # listens on 127.0.0.1:<free port>
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
        ...
        spans = receiver.wait_for(lambda spans: ..., timeout=20)   # polls with a deadline

It accepts ``POST /v1/traces`` with an ``ExportTraceServiceRequest`` in protobuf (what
``opentelemetry-exporter-otlp-proto-http`` sends, gzip or not), answers an empty
``ExportTraceServiceResponse`` and keeps every span as a plain ``Span`` record with its resource's
``service.name`` and ``process.pid``, so a test can check parents, links and which process sent what.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


@dataclass(frozen=True)
class Span:
    """One received span (ids as lower-case hex, ``parent_id`` empty for a root)."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    service: str
    pid: int
    attributes: dict[str, Any] = field(hash=False)
    resource: dict[str, Any] = field(hash=False)
    links: tuple[tuple[str, str], ...] = ()  # (trace id, span id)


class OtlpReceiver:
    """A threaded HTTP server collecting spans; ``endpoint`` is the base URL for OTEL_EXPORTER_OTLP_ENDPOINT."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.spans: list[Span] = []
        self.requests = 0
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.path.rstrip("/") != "/v1/traces" or "protobuf" not in (self.headers.get("Content-Type") or ""):
                    self._answer(404 if self.path.rstrip("/") != "/v1/traces" else 415, b"")
                    return
                request = ExportTraceServiceRequest()
                try:
                    request.ParseFromString(body)
                except Exception:  # noqa: BLE001 - a malformed export is the sender's bug: 400
                    self._answer(400, b"")
                    return
                receiver._add(request)
                self._answer(200, ExportTraceServiceResponse().SerializeToString())

            def _answer(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _add(self, request: ExportTraceServiceRequest) -> None:
        received: list[Span] = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    received.append(
                        Span(
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            name=s.name,
                            kind=s.kind,
                            service=str(resource.get("service.name", "")),
                            pid=int(resource.get("process.pid") or 0),
                            attributes={a.key: _value(a.value) for a in s.attributes},
                            resource=resource,
                            links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in s.links),
                        )
                    )
        with self._lock:
            self.requests += 1
            self.spans.extend(received)
            self._lock.notify_all()

    def trace(self, trace_id: str) -> list[Span]:
        """Every span received so far of one trace."""
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def wait_for(self, condition: Callable[[list[Span]], Any], *, timeout: float = 20.0) -> Any:
        """Wait until ``condition(all spans so far)`` is truthy and return its value; AssertionError at the
        deadline (with what arrived)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                result = condition(list(self.spans))
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    names = sorted({(s.service, s.name) for s in self.spans})
                    raise AssertionError(f"spans did not arrive within {timeout}s; received {names}")
                self._lock.wait(min(left, 0.5))


if __name__ == "__main__":  # a receiver in its own process (scripts/bench/profile_vote.py): prints its endpoint
    import signal
    import sys

    server = OtlpReceiver().start()
    print(server.endpoint, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.pause()
