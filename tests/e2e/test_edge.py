"""Edge limits at the gateway: leaky buckets per client address and path class, and a connection cap.

The session stack's gateway runs with budgets the suite never reaches (tests/conftest.py), so these tests
render a second gateway from the same template with tiny ones (``scripts.gateway.EdgeLimits``), in front
of the same services, on a port of its own (an nginx started for this module). Each test sends from its
own loopback address (127.0.0.x), so each starts with full buckets whatever the others spent.

Whether a request reached a service is read from that gateway's access log (its ``upstream.address`` is
empty when nginx answered by itself).
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts import gateway as gateway_config
from scripts.gateway import Bucket, EdgeLimits
from scripts.platform_stack import free_port

pytestmark = pytest.mark.stack

TINY = EdgeLimits(reads=Bucket(1, 4), writes=Bucket(1, 4), auth=Bucket(1, 2), connections=3)


@dataclass
class EdgeGateway:
    port: int
    access_log: Path
    error_log: Path

    def request(
        self, method: str, path: str, *, source: str, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request on a fresh connection from loopback address ``source``."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15, source_address=(source, 0))
        try:
            connection.request(method, path, body=body, headers={"Accept": "application/json", **(headers or {})})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def log_lines(self, source: str) -> list[dict]:
        """The access log's lines for requests from ``source``."""
        lines = [json.loads(line) for line in self.access_log.read_text().splitlines() if line.startswith("{")]
        return [line for line in lines if line["source"]["address"] == source]


@pytest.fixture(scope="module")
def edge_gateway(stack, tmp_path_factory) -> Iterator[EdgeGateway]:
    run_dir = tmp_path_factory.mktemp("edge-gateway")
    port = free_port()
    conf = gateway_config.write_local(
        run_dir=run_dir,
        port=port,
        polls=stack.ports["polls"],
        choices=stack.ports["choices"],
        votes=stack.ports["votes"],
        trace_sample_percent=0,
        edge_limits=TINY,
    )
    checked = gateway_config.check(conf)
    assert checked.returncode == 0, checked.stderr
    access_log, error_log = run_dir / "access.log", run_dir / "error.log"
    with access_log.open("w") as out, error_log.open("w") as err:
        nginx = subprocess.Popen(gateway_config.local_command(conf), stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert nginx.poll() is None and time.monotonic() < deadline, error_log.read_text()
                time.sleep(0.05)
        yield EdgeGateway(port=port, access_log=access_log, error_log=error_log)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)


def assert_too_many_requests(headers: dict[str, str], body: bytes) -> None:
    assert headers["content-type"].startswith("application/problem+json"), headers
    assert int(headers["retry-after"]) >= 1
    problem = json.loads(body)
    assert problem["status"] == 429 and problem["title"] == "Too Many Requests"
    assert headers.get("x-request-id")


def wait_for_log(edge: EdgeGateway, source: str, count: int, deadline_s: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + deadline_s
    while True:
        lines = edge.log_lines(source)
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_a_read_burst_beyond_the_bucket_gets_429_at_the_gateway_without_reaching_a_service(edge_gateway) -> None:
    source = "127.0.0.21"
    # The entry point: a read the micro-cache never answers, so every 200 here came from polls_service.
    answers = [edge_gateway.request("GET", "/api/v3/", source=source) for _ in range(15)]
    statuses = [status for status, _, _ in answers]
    admitted = statuses.count(200)
    # 1 r/s with a burst of 4 (nodelay): about five at once, then 429s (one more if a second passes).
    assert 5 <= admitted <= 7, statuses
    assert statuses.count(429) == 15 - admitted, statuses
    for status, headers, body in answers:
        if status == 429:
            assert_too_many_requests(headers, body)

    lines = wait_for_log(edge_gateway, source, 15)
    assert len(lines) == 15, lines
    for line in lines:
        upstream = line["gateway"]["upstream"]["address"]
        if line["http"]["response"]["status_code"] == 429:
            assert upstream in ("", "-"), line  # nginx answered; no service saw it
        else:
            assert upstream.startswith("127.0.0.1:"), line


def test_each_path_class_has_its_own_bucket(edge_gateway) -> None:
    source = "127.0.0.22"
    reads = [edge_gateway.request("GET", "/api/v1/polls/", source=source)[0] for _ in range(10)]
    assert reads[-1] == 429, reads
    # Writes are counted apart: an anonymous create still reaches polls_service (which refuses it, 401).
    status, _, _ = edge_gateway.request(
        "POST", "/api/v1/polls/", source=source, headers={"Content-Type": "application/json"}, body=b"{}"
    )
    assert status == 401
    # Auth has the smallest bucket: 1 r/s, burst 2.
    logins = [
        edge_gateway.request(
            "POST",
            "/api/v1/auth/token/",
            source=source,
            headers={"Content-Type": "application/json"},
            body=b'{"username": "nobody-edge", "password": "wrong"}',
        )
        for _ in range(8)
    ]
    statuses = [status for status, _, _ in logins]
    assert statuses.count(429) >= 4, statuses
    assert set(statuses) <= {400, 401, 429}, statuses
    # The probes are never limited.
    assert edge_gateway.request("GET", "/healthz", source=source)[0] == 200


def test_x_forwarded_for_does_not_choose_the_bucket(edge_gateway) -> None:
    spent, fresh = "127.0.0.23", "127.0.0.24"
    for _ in range(10):
        edge_gateway.request("GET", "/api/v1/polls/", source=spent)
    spoofed = [
        edge_gateway.request(
            "GET",
            "/api/v1/polls/",
            source=spent,
            headers={"X-Forwarded-For": f"10.9.8.{n}", "X-Real-IP": f"10.9.8.{n}", "Forwarded": f"for=10.9.8.{n}"},
        )[0]
        for n in range(5)
    ]
    assert spoofed == [429] * 5, spoofed
    # Another address (the TCP peer) has a bucket of its own.
    assert edge_gateway.request("GET", "/api/v1/polls/", source=fresh)[0] == 200


def test_concurrent_connections_per_address_are_bounded(edge_gateway) -> None:
    source = "127.0.0.25"
    held = []
    try:
        # Three requests held open: nginx admits each (headers read), then waits for a body that never comes.
        for _ in range(TINY.connections):
            sock = socket.create_connection(("127.0.0.1", edge_gateway.port), timeout=10, source_address=(source, 0))
            sock.sendall(
                b"POST /api/v1/polls/ HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            held.append(sock)
        # Until nginx has counted all three, a fourth may still pass; it must be refused within a deadline.
        deadline = time.monotonic() + 5
        while True:
            status, headers, body = edge_gateway.request("GET", "/api/v3/", source=source)
            if status == 429 or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # within the read bucket (1 r/s, burst 4): a 429 here is the connection cap
        assert status == 429, (status, body)
        assert_too_many_requests(headers, body)
        assert 'limiting connections by zone "edge_conn"' in edge_gateway.error_log.read_text()
        assert edge_gateway.request("GET", "/api/v3/", source="127.0.0.26")[0] == 200  # others are unaffected
    finally:
        for sock in held:
            sock.close()
    # Closing them frees the slots at once.
    deadline = time.monotonic() + 5
    while (status := edge_gateway.request("GET", "/api/v3/", source=source)[0]) != 200:
        assert time.monotonic() < deadline, status
        time.sleep(1.0)  # the read bucket refills at 1 r/s
