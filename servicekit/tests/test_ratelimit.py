"""Token buckets (servicekit.ratelimit): the GCRA script against the real Redis, the fallback, the throttle."""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from django.conf import settings
from prometheus_client import REGISTRY
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from servicekit import ratelimit
from servicekit.principal import Principal
from servicekit.ratelimit import Budget, RateLimiter, parse_budget, rate_limit_headers, rate_limited


def _redis_url() -> str:
    location = settings.CACHES["default"]["LOCATION"]
    assert isinstance(location, str) and location.startswith("redis://"), "these tests need the real Redis"
    return location


@pytest.fixture
def limiter() -> RateLimiter:
    return RateLimiter(_redis_url(), key_prefix=f"test-{uuid.uuid4().hex}:")


def _hits(limiter: RateLimiter, budget: Budget, n: int, identity: str = "user:1") -> list[ratelimit.Decision]:
    return [limiter.hit("vote", identity, budget) for _ in range(n)]


def test_parse_budget() -> None:
    assert parse_budget("20/s burst 40") == Budget(burst=40, interval=0.05)
    assert parse_budget("300/min") == Budget(burst=300, interval=0.2)
    assert parse_budget(" 5/10s  BURST 2 ") == Budget(burst=2, interval=2.0)
    assert parse_budget("off") is None
    assert parse_budget("") is None
    for bad in ("fast", "20/s burst", "20/s burst x", "20/fortnight"):
        with pytest.raises(ValueError):
            parse_budget(bad)


def test_the_burst_is_allowed_at_once_then_one_token_per_interval(limiter: RateLimiter) -> None:
    budget = parse_budget("1/min burst 5")
    assert budget is not None
    decisions = _hits(limiter, budget, 7)
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    refused = decisions[5]
    assert 55 < refused.retry_after <= 60  # the next token, one interval after the first request
    assert 295 < refused.reset_after <= 300  # full again after five intervals
    # Another identity and another route class have buckets of their own.
    assert limiter.hit("vote", "user:2", budget).allowed
    assert limiter.hit("poll_write", "user:1", budget).allowed


def test_tokens_refill_at_the_rate(limiter: RateLimiter) -> None:
    budget = parse_budget("10/s burst 3")
    assert budget is not None
    assert [d.allowed for d in _hits(limiter, budget, 4)] == [True, True, True, False]
    started = time.monotonic()
    deadline = started + 5
    while not limiter.hit("vote", "user:1", budget).allowed:
        assert time.monotonic() < deadline, "no token came back"
        time.sleep(0.01)
    assert time.monotonic() - started <= 0.2  # one token per 0.1 s
    # A refused request spends nothing: after the wait, exactly the refilled tokens are there.
    assert not limiter.hit("vote", "user:1", budget).allowed


def test_decisions_use_redis_time_not_the_callers_clock(limiter: RateLimiter, monkeypatch: Any) -> None:
    budget = parse_budget("1/hour burst 1")
    assert budget is not None
    assert limiter.hit("vote", "user:1", budget).allowed
    # A caller whose clock runs a day ahead (another host) gains nothing.
    monkeypatch.setattr(time, "time", lambda: 1e10)
    assert not limiter.hit("vote", "user:1", budget).allowed


def test_one_budget_across_limiters_and_threads(limiter: RateLimiter) -> None:
    """Two "instances" (their own connection pools), 16 threads each: exactly the burst gets through."""
    other = RateLimiter(_redis_url(), key_prefix=limiter.key_prefix)
    budget = parse_budget("1/hour burst 50")
    assert budget is not None

    def hit(n: int) -> bool:
        return (limiter if n % 2 else other).hit("vote", "user:7", budget).allowed

    with ThreadPoolExecutor(max_workers=32) as pool:
        allowed = sum(pool.map(hit, range(400)))
    assert allowed == 50


def test_script_reloads_after_script_flush(limiter: RateLimiter) -> None:
    budget = parse_budget("1/min burst 2")
    assert budget is not None
    assert limiter.hit("vote", "user:1", budget).allowed
    redis.Redis.from_url(_redis_url()).script_flush()  # a Redis restart forgets loaded scripts
    decision = limiter.hit("vote", "user:1", budget)
    assert decision.allowed and decision.remaining == 0
    assert not limiter._outage  # EVALSHA failed with NOSCRIPT, the script was loaded again: no fallback


def test_header_values() -> None:
    budget = parse_budget("20/s burst 40")
    assert budget is not None
    decision = ratelimit.Decision(allowed=True, remaining=17, retry_after=0.0, reset_after=1.15)
    assert rate_limit_headers("vote", budget, decision) == {
        "RateLimit-Policy": '"vote";q=40;w=2',
        "RateLimit": '"vote";r=17;t=2',
    }


def _failures() -> float:
    return REGISTRY.get_sample_value("rate_limit_store_failures_total", {"service": "kit"}) or 0.0


def test_fails_open_with_a_local_bucket_when_redis_is_unreachable(caplog: Any, closed_port: int) -> None:
    limiter = RateLimiter(f"redis://127.0.0.1:{closed_port}/0", retry_after=0.0)
    budget = parse_budget("1/min burst 3")
    assert budget is not None
    before = _failures()
    with caplog.at_level(logging.WARNING, logger="servicekit.ratelimit"):
        decisions = _hits(limiter, budget, 5)
    # The same budget, kept in this process: the burst, then refusals (never an exception).
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert 55 < decisions[3].retry_after <= 60
    warnings = [r for r in caplog.records if "rate limit store unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not once per request
    assert _failures() - before == 5


def test_a_slow_redis_costs_one_short_timeout_then_is_skipped(hanging_port: int) -> None:
    limiter = RateLimiter(f"redis://127.0.0.1:{hanging_port}/0", timeout=0.2, retry_after=30.0)
    budget = parse_budget("1/min burst 3")
    assert budget is not None
    started = time.monotonic()
    first = limiter.hit("vote", "user:1", budget)
    assert first.allowed and time.monotonic() - started < 1.5
    started = time.monotonic()
    assert [d.allowed for d in _hits(limiter, budget, 3)] == [True, True, False]
    assert time.monotonic() - started < 0.1  # within the retry interval Redis is not asked again


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: connections are refused


@pytest.fixture
def hanging_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


# --- the DRF throttle ------------------------------------------------------------------------------


@rate_limited("vote")
class VoteView(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def get(self, request: Any) -> Response:
        return Response({"ok": True})

    def post(self, request: Any) -> Response:
        return Response({"ok": True}, status=201)


@rate_limited("token_refresh", key="ip")
class RefreshView(VoteView):
    pass


@pytest.fixture
def budgets(settings: Any) -> Iterator[None]:
    settings.SERVICEKIT = {
        **settings.SERVICEKIT,
        "THROTTLE_RATES": {
            **settings.SERVICEKIT.get("THROTTLE_RATES", {}),
            "vote.user": "1/min burst 2",
            "token_refresh.ip": "1/min burst 2",
        },
    }
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"rl-{uuid.uuid4().hex}"}}
    yield
    ratelimit._limiter = None


def _call(view: Any, method: str = "post", *, user: Any = None, **meta: Any) -> Any:
    request = getattr(APIRequestFactory(), method)("/x/", **meta)
    if user is not None:
        request.user = user
        view = type("Authenticated", (view,), {"perform_authentication": lambda self, r: setattr(r, "user", user)})
    return view.as_view()(request).render()


@pytest.mark.django_db  # a refusal writes an audit entry (servicekit.audit)
def test_throttle_headers_on_every_answer_and_429_problem(budgets: None) -> None:
    user = Principal(id=41, username="voter", roles=frozenset({"user"}))
    answers = [_call(VoteView, user=user) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert [a["RateLimit"] for a in answers] == ['"vote";r=1;t=60', '"vote";r=0;t=120', '"vote";r=0;t=120']
    assert {a["RateLimit-Policy"] for a in answers} == {'"vote";q=2;w=120'}
    refused = answers[2]
    assert refused["Content-Type"].startswith("application/problem+json")
    assert json.loads(refused.rendered_content)["status"] == 429
    assert 59 <= int(refused["Retry-After"]) <= 60
    # Reads are not limited; another user has a bucket of its own.
    assert _call(VoteView, "get", user=user).status_code == 200
    assert _call(VoteView, user=Principal(id=42, username="other", roles=frozenset())).status_code == 201


@pytest.mark.django_db
def test_anonymous_and_ip_keys_ignore_a_spoofed_forwarded_for(budgets: None) -> None:
    statuses = [
        _call(RefreshView, REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(3)
    ]
    assert statuses == [201, 201, 429]  # an untrusted peer's X-Forwarded-For is not believed
    # Behind the trusted gateway the client is the address it forwards.
    assert _call(RefreshView, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 201
    # A logged-in caller of a per-IP class spends its address's budget, not its own.
    user = Principal(id=43, username="x", roles=frozenset())
    assert _call(RefreshView, user=user, REMOTE_ADDR="198.51.100.7").status_code == 429


def test_off_switches_the_class_off(budgets: None, settings: Any) -> None:
    settings.SERVICEKIT = {**settings.SERVICEKIT, "THROTTLE_RATES": {"vote.user": "off"}}
    answers = [_call(VoteView, REMOTE_ADDR="198.51.100.9") for _ in range(5)]
    assert {a.status_code for a in answers} == {201}
    assert "RateLimit" not in answers[0]


@pytest.mark.django_db
def test_throttled_requests_are_counted(budgets: None) -> None:
    labels = {"service": "kit", "route_class": "vote"}
    before = REGISTRY.get_sample_value("rate_limited_requests_total", labels) or 0.0
    for _ in range(4):
        _call(VoteView, REMOTE_ADDR="198.51.100.10")
    assert (REGISTRY.get_sample_value("rate_limited_requests_total", labels) or 0.0) - before == 2
