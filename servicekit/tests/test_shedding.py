"""The load-shedding limiter on a fake clock, and the middleware's answers (servicekit.shedding)."""

from __future__ import annotations

import json
import time

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from servicekit import shedding
from servicekit.shedding import DEFAULT, EXEMPT, PRIORITY, Limiter, classify, queue_wait


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_limiter(clock: FakeClock, *, target: float = 0.150, max_wait: float = 0.100) -> Limiter:
    return Limiter(
        target=target, max_wait=max_wait, min_wait=0.010, window=0.5, min_samples=20, priority_multiple=4.0, clock=clock
    )


def run_window(
    limiter: Limiter, clock: FakeClock, *, wait: float | list[float], latency: float | None = None, n: int = 40
) -> int:
    """``n`` requests over one window, queued ``wait`` s each (or cycling over a list); returns how many were shed."""
    waits = wait if isinstance(wait, list) else [wait]
    shed = 0
    for i in range(n):
        queued = waits[i % len(waits)]
        if limiter.admit(queued, DEFAULT):
            limiter.record(latency if latency is not None else queued + 0.005, queued)
        else:
            shed += 1
        clock.now += limiter.window / n
    return shed


def overload(limiter: Limiter, clock: FakeClock) -> None:
    """Three windows of a standing queue (two judged in a row): the limiter is shedding afterwards."""
    for _ in range(3):
        run_window(limiter, clock, wait=0.400)
    assert limiter.overloaded


def test_short_waits_are_always_admitted(clock: FakeClock) -> None:
    limiter = make_limiter(clock)
    for _ in range(5):
        assert run_window(limiter, clock, wait=0.020) == 0
    assert not limiter.overloaded
    assert limiter.limit == pytest.approx(0.100)


def test_a_single_window_of_queue_is_not_yet_overload(clock: FakeClock) -> None:
    limiter = make_limiter(clock)
    for _ in range(5):  # standing queue, gone, standing queue, gone, ...
        run_window(limiter, clock, wait=0.400)
        run_window(limiter, clock, wait=0.001)
    assert not limiter.overloaded


def test_a_burst_does_not_shed(clock: FakeClock) -> None:
    """Waits from 0 to 1 s in one window (a burst drained by the workers): its first request did not wait."""
    limiter = make_limiter(clock)
    for _ in range(3):
        for i in range(50):
            clock.now += 0.01
            assert limiter.admit(i * 0.02, DEFAULT)
    assert not limiter.overloaded


def test_too_few_requests_never_count_as_overload(clock: FakeClock) -> None:
    limiter = make_limiter(clock)
    for _ in range(4):
        assert run_window(limiter, clock, wait=0.900, n=2) == 0  # a trickle: 4 requests per second
        clock.now += 5 * limiter.window
    assert not limiter.overloaded


def test_a_slow_worker_is_judged_over_enough_requests(clock: FakeClock) -> None:
    """10 requests per window (a slow worker): its windows last until they hold MIN_SAMPLES requests."""
    limiter = make_limiter(clock)
    for _ in range(6):
        run_window(limiter, clock, wait=0.900, n=10)
    assert limiter.overloaded


def test_a_standing_queue_sheds_only_beyond_the_limit(clock: FakeClock) -> None:
    limiter = make_limiter(clock)
    assert run_window(limiter, clock, wait=0.400) == 0  # the first two windows only observe ...
    assert run_window(limiter, clock, wait=0.400) == 0
    assert run_window(limiter, clock, wait=0.400) == 40  # ... the third sheds what waited beyond the limit
    assert limiter.overloaded
    assert not limiter.admit(limiter.limit + 0.001, DEFAULT)
    assert limiter.admit(limiter.limit - 0.001, DEFAULT)


def test_priority_requests_are_shed_only_at_the_multiple(clock: FakeClock) -> None:
    limiter = make_limiter(clock)
    overload(limiter, clock)
    limit = limiter.limit
    assert limiter.admit(limit * 3.9, PRIORITY)
    assert not limiter.admit(limit * 4.1, PRIORITY)
    assert not limiter.admit(limit * 1.1, DEFAULT)


def test_exempt_requests_are_never_shed(clock: FakeClock) -> None:
    limiter = make_limiter(clock)
    overload(limiter, clock)
    assert limiter.admit(30.0, EXEMPT)


def test_limit_shrinks_while_accepted_latency_is_above_target(clock: FakeClock) -> None:
    limiter = make_limiter(clock, target=0.050)
    overload(limiter, clock)
    limiter.limit = 0.100
    run_window(limiter, clock, wait=[0.001, 0.095, 0.5])  # accepted p95: 95 ms waited + 5 ms served
    run_window(limiter, clock, wait=[0.001, 0.095, 0.5])  # ... judged when the next window begins
    assert limiter.overloaded
    assert limiter.limit < 0.095  # the 95 ms waits are shed from now on


def test_limit_never_shrinks_below_two_request_times(clock: FakeClock) -> None:
    """Slow requests are not made faster by shedding: the limit keeps two of them queued (goodput)."""
    limiter = make_limiter(clock, target=0.050, max_wait=0.300)
    overload(limiter, clock)
    for _ in range(60):
        run_window(limiter, clock, wait=[0.001, 0.5], latency=0.061)  # waited 1 ms, served 60 ms
    assert limiter.limit == pytest.approx(0.120, rel=0.02)
    for _ in range(60):
        run_window(limiter, clock, wait=[0.001, 0.5], latency=0.300)
    assert limiter.limit <= 0.300  # never above the ceiling


def test_limit_grows_back_under_good_latency_up_to_the_ceiling(clock: FakeClock) -> None:
    limiter = make_limiter(clock, target=0.050)
    overload(limiter, clock)
    for _ in range(3):
        run_window(limiter, clock, wait=[0.001, 0.095, 0.5])
    low = limiter.limit
    assert low < 0.100
    for _ in range(40):
        run_window(limiter, clock, wait=[0.001, 0.5])  # accepted: 6 ms
    assert limiter.limit == pytest.approx(0.100)
    assert limiter.limit > low


def test_overload_ends_after_hold_windows_without_long_waits(clock: FakeClock) -> None:
    limiter = make_limiter(clock)
    overload(limiter, clock)
    for _ in range(shedding.HOLD_WINDOWS):
        run_window(limiter, clock, wait=0.020)  # nobody waited beyond the limit (each judged when the next begins)
    assert limiter.overloaded  # the last calm window is not judged yet ...
    assert limiter.admit(0.5, DEFAULT)  # ... and is, when the next one begins: the overload is over
    assert not limiter.overloaded


def test_calm_windows_while_shedding_do_not_end_the_overload(clock: FakeClock) -> None:
    """Shedding keeps the queue short: calm windows between shed ones keep the worker shedding, so the
    queue never builds up again for the two windows it takes to start."""
    limiter = make_limiter(clock)
    overload(limiter, clock)
    for _ in range(10):
        for _ in range(shedding.HOLD_WINDOWS - 1):
            run_window(limiter, clock, wait=0.020)
        assert run_window(limiter, clock, wait=[0.020, 0.400]) == 20  # the long waits are shed at once
        assert limiter.overloaded


def test_an_idle_worker_leaves_overload(clock: FakeClock) -> None:
    limiter = make_limiter(clock)
    overload(limiter, clock)
    limiter.admit(0.0, DEFAULT)  # the last busy window is judged: still overloaded
    clock.now += 6.0  # then more than 10 window lengths with a single request: not a standing queue
    assert limiter.admit(0.5, DEFAULT)
    assert not limiter.overloaded


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/healthz", EXEMPT),
        ("GET", "/readyz", EXEMPT),
        ("GET", "/metrics", EXEMPT),
        ("GET", "/api/v1/results/3f0c/", PRIORITY),
        ("GET", "/api/v3/results/3f0c/", PRIORITY),
        ("POST", "/internal/polls/1/close/", PRIORITY),
        ("POST", "/api/v1/votes/", DEFAULT),
        ("GET", "/api/v1/polls/", DEFAULT),
        ("POST", "/api/v1/results/3f0c/", DEFAULT),
    ],
)
def test_classify(method: str, path: str, expected: str) -> None:
    assert classify(method, path) == expected


def test_queue_wait_reads_the_gateway_stamp() -> None:
    assert queue_wait("t=100.250", 100.500) == pytest.approx(0.25)
    assert queue_wait("100.250", 100.500) == pytest.approx(0.25)
    for unusable in (None, "", "t=abc", "t=200.0", "t=1.0", "t=nan"):
        assert queue_wait(unusable, 100.5) is None  # missing, garbage, in the future, absurdly old


def test_middleware_sheds_with_problem_json_before_the_view(settings, monkeypatch) -> None:  # noqa: ANN001
    settings.SERVICEKIT = {**settings.SERVICEKIT, "LOAD_SHEDDING_WINDOW": 0.5, "LOAD_SHEDDING_MIN_SAMPLES": 20}
    calls = []

    def view(request):  # noqa: ANN001, ANN202
        calls.append(request.path)
        return HttpResponse("ok")

    middleware = shedding.LoadSheddingMiddleware(view)
    middleware.limiter.overloaded = True  # as after a standing queue (the limiter's tests above)
    factory = RequestFactory()
    stale = f"t={time.time() - 0.2:.3f}"  # twice the limit: below the priority multiple (4x)

    vote = middleware(factory.post("/api/v1/votes/", HTTP_X_REQUEST_START=stale))
    assert vote.status_code == 503
    assert vote["Content-Type"] == "application/problem+json"
    assert vote["Retry-After"] in ("1", "2")
    assert json.loads(vote.content)["type"].endswith("/overloaded")
    assert calls == []  # shed before the view

    assert middleware(factory.get("/healthz", HTTP_X_REQUEST_START=stale)).status_code == 200
    assert middleware(factory.get("/api/v1/results/x/", HTTP_X_REQUEST_START=stale)).status_code == 200
    assert middleware(factory.post("/api/v1/votes/")).status_code == 200  # no stamp: not measurable
    fresh = f"t={time.time():.3f}"
    assert middleware(factory.post("/api/v1/votes/", HTTP_X_REQUEST_START=fresh)).status_code == 200
    assert len(calls) == 4


def test_load_shedding_off_removes_the_middleware(settings) -> None:  # noqa: ANN001
    from django.core.exceptions import MiddlewareNotUsed

    settings.SERVICEKIT = {**settings.SERVICEKIT, "LOAD_SHEDDING": False}
    with pytest.raises(MiddlewareNotUsed):
        shedding.LoadSheddingMiddleware(lambda request: HttpResponse())


def test_shed_answers_spread_their_retries_over_one_and_two_seconds(settings) -> None:  # noqa: ANN001
    """Clients shed together must not all come back together: Retry-After is 1 or 2, both used."""
    settings.SERVICEKIT = {**settings.SERVICEKIT, "LOAD_SHEDDING_WINDOW": 0.5, "LOAD_SHEDDING_MIN_SAMPLES": 20}
    middleware = shedding.LoadSheddingMiddleware(lambda request: HttpResponse("ok"))
    middleware.limiter.overloaded = True
    factory = RequestFactory()
    stale = f"t={time.time() - 0.2:.3f}"
    answers = [middleware(factory.post("/api/v1/votes/", HTTP_X_REQUEST_START=stale)) for _ in range(60)]
    assert {a.status_code for a in answers} == {503}
    delays = [a["Retry-After"] for a in answers]
    assert set(delays) == {"1", "2"}, delays  # 60 draws all alike: 2 ** -59
