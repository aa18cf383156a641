"""Token buckets in the services (servicekit.ratelimit) through the running gateway.

Runs against the session's stack (``tests/conftest.py``): every web worker of every instance
(``TEST_SERVICE_REPLICAS``) decides against the same bucket in Redis. The budgets are the stack's
(``VOTE_RATE_PER_USER``, ``TOKEN_REFRESH_RATE_PER_IP``, else the development defaults of
``servicekit.throttle_rates``); each test spends the bucket of a user or client address of its own, so
the rest of the suite never meets a 429.

A bucket of ``burst`` tokens refilled ``rate`` a second lets ``burst + rate * W`` requests through in a
window of ``W`` seconds, where ``W`` is the time between the first and the last request the service
decided. The client only knows ``W`` within the latency of one request: the count must lie within the
bounds those windows give, each widened by 1 %.
"""

from __future__ import annotations

import http.client
import json
import math
import random
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from servicekit import jwks
from servicekit.testing import make_token, token_claims
from servicekit.throttle_rates import DEVELOPMENT_THROTTLE_RATES, THROTTLE_RATE_VARIABLES, Budget, parse_budget

pytestmark = pytest.mark.stack

# Enough to keep every worker busy, few enough that load shedding rarely answers instead.
THREADS = 12


@dataclass
class Shot:
    sent: float
    answered: float
    status: int
    headers: dict[str, str]
    body: bytes


def _budget(stack: Any, scope: str) -> Budget:
    budget = parse_budget(stack.env.get(THROTTLE_RATE_VARIABLES[scope]) or DEVELOPMENT_THROTTLE_RATES[scope])
    assert budget is not None, f"{scope} is switched off in this stack"
    return budget


def _hammer(stack: Any, path: str, body: Any, *, total: int, headers: Any, sources: list[str]) -> list[Shot]:
    """``total`` POSTs from ``THREADS`` threads (keep-alive connections, thread i from ``sources[i % n]``)."""
    host, port = stack.gateway_url.removeprefix("http://").rsplit(":", 1)
    payload = json.dumps(body).encode()
    shots: list[Shot] = []
    lock = threading.Lock()
    remaining = iter(range(total))
    start = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(
            host, int(port), timeout=30, source_address=(sources[index % len(sources)], 0)
        )
        start.wait()
        try:
            while True:
                with lock:
                    n = next(remaining, None)
                if n is None:
                    return
                sent = time.monotonic()
                connection.request(
                    "POST", path, body=payload, headers={"Content-Type": "application/json", **headers(n)}
                )
                response = connection.getresponse()
                data = response.read()
                shot = Shot(
                    sent, time.monotonic(), response.status, {k.lower(): v for k, v in response.getheaders()}, data
                )
                with lock:
                    shots.append(shot)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(shots) == total, f"only {len(shots)} of {total} requests were answered"
    return shots


def _assert_within_budget(shots: list[Shot], budget: Budget, route_class: str, passed_status: int) -> int:
    """The count of requests let through is ``burst + rate * W`` within 1 %; every answer is well-formed."""
    passed = [s for s in shots if s.status == passed_status]
    refused = [s for s in shots if s.status == 429]
    # Load shedding (servicekit.shedding) may answer 503 before any view runs: no token is spent.
    shed = [s for s in shots if s.status == 503]
    assert len(passed) + len(refused) + len(shed) == len(shots), sorted({s.status for s in shots})
    assert all(b"overloaded" in s.body for s in shed)
    assert refused, "the budget was never exhausted: send more"
    rate = 1 / budget.interval
    inner = max(0.0, max(s.sent for s in shots) - min(s.answered for s in shots))
    outer = max(s.answered for s in shots) - min(s.sent for s in shots)
    low, high = budget.burst + math.floor(rate * inner), budget.burst + rate * outer + 1
    detail = f"{len(passed)} passed, {len(refused)} refused, {len(shed)} shed; window {inner:.3f}..{outer:.3f} s"
    assert low * 0.99 <= len(passed) <= high * 1.01, (low, high, detail)
    print(f"{route_class}: {detail}; expected {low}..{high:.1f}")
    policy = f'"{route_class}";q={budget.burst};w={budget.window}'
    pattern = re.compile(rf'^"{route_class}";r=(\d+);t=(\d+)$')
    for shot in passed + refused:
        # From the service (the edge's own 429s carry no bucket): both fields, in draft-10 syntax.
        assert shot.headers.get("ratelimit-policy") == policy, shot.headers
        match = pattern.match(shot.headers.get("ratelimit", ""))
        assert match, shot.headers.get("ratelimit")
        assert int(match[1]) <= budget.burst and int(match[2]) <= budget.window
    for shot in refused:
        assert shot.headers["content-type"].startswith("application/problem+json")
        assert json.loads(shot.body)["status"] == 429
        assert int(shot.headers["retry-after"]) >= 1
        assert shot.headers["ratelimit"].startswith(f'"{route_class}";r=0;')
    return len(passed)


def test_one_users_vote_budget_holds_across_instances_and_workers(stack) -> None:
    """Hundreds of concurrent votes of one user, from 12 client addresses: the budget, not more."""
    budget = _budget(stack, "vote.user")
    key = jwks.load_private_key((Path(stack.run_dir) / "secrets" / "jwt_private.pem").read_text())
    user_id = random.randint(7_000_000, 7_999_999)  # a user of this test alone
    authorization = {"Authorization": f"Bearer {make_token(token_claims(user_id, f'rl{user_id}'), private_key=key)}"}
    # An empty body: the token is spent before validation answers 400, so nothing is written.
    shots = _hammer(
        stack,
        "/api/v2/votes/",
        {},
        total=3 * budget.burst + 100,
        headers=lambda n: authorization,
        sources=[f"127.0.0.{40 + i}" for i in range(THREADS)],
    )
    _assert_within_budget(shots, budget, "vote", passed_status=400)


def test_a_spoofed_forwarded_for_buys_no_token_refresh_budget(stack) -> None:
    """Anonymous refreshes from one address, each claiming another X-Forwarded-For: one address's budget."""
    budget = _budget(stack, "token_refresh.ip")

    def spoofed(n: int) -> dict[str, str]:
        return {"X-Forwarded-For": f"203.0.113.{n % 250}, 198.51.100.{n % 200}", "X-Real-IP": f"192.0.2.{n % 250}"}

    # An empty body: the token is spent before validation answers 400.
    shots = _hammer(
        stack,
        "/api/v1/auth/token/refresh/",
        {},
        total=3 * budget.burst + 100,
        headers=spoofed,
        sources=["127.0.0.80"],
    )
    _assert_within_budget(shots, budget, "token_refresh", passed_status=400)
    # Another client address has its own, full bucket.
    other = _hammer(stack, "/api/v1/auth/token/refresh/", {}, total=1, headers=lambda n: {}, sources=["127.0.0.81"])
    assert other[0].status == 400
    assert other[0].headers["ratelimit"].startswith(f'"token_refresh";r={budget.burst - 1};')


def test_reads_carry_no_bucket(gateway) -> None:
    response = gateway.get("/api/v1/polls/")
    assert response.status_code == 200
    assert "RateLimit" not in response.headers and "RateLimit-Policy" not in response.headers
