"""The request budgets each environment starts with: credential endpoints (``servicekit.throttling``,
fixed windows per IP and per username) and route classes (``servicekit.ratelimit``, token buckets per
user or client IP: ``"20/s burst 40"``).

Django-free, so settings can read it while they load::

    from servicekit.throttle_rates import DEVELOPMENT_THROTTLE_RATES, THROTTLE_RATE_VARIABLES
    rate = os.environ.get(THROTTLE_RATE_VARIABLES["login.ip"]) or DEVELOPMENT_THROTTLE_RATES["login.ip"]

``servicekit.settings.auth_settings`` resolves ``SERVICEKIT["THROTTLE_RATES"]`` from these: each scope's
environment variable, else the default of the environment (``DJANGO_ENV``). The syntax of both kinds
lives here too: ``parse_rate("10/min")`` (a window) and ``parse_budget("20/s burst 40")`` (a bucket).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

# Environment variable of each credential-endpoint budget.
THROTTLE_RATE_VARIABLES = {
    "login.ip": "LOGIN_RATE_PER_IP",
    "login.username": "LOGIN_RATE_PER_USERNAME",
    "register.ip": "REGISTER_RATE_PER_IP",
    "register.username": "REGISTER_RATE_PER_USERNAME",
    # Token buckets (servicekit.ratelimit): "<count>/<period> burst <size>", or "off".
    "vote.user": "VOTE_RATE_PER_USER",
    "poll_write.user": "POLL_WRITE_RATE_PER_USER",
    "choice_write.user": "CHOICE_WRITE_RATE_PER_USER",
    "token_refresh.ip": "TOKEN_REFRESH_RATE_PER_IP",
}
# Production defaults are strict. Development (make up, the test stack) is looser per username (test
# suites log the operator in often) and lets one machine, where every browser tab and test comes from
# 127.0.0.1, register and log in a lot.
PRODUCTION_THROTTLE_RATES = {
    "login.ip": "100/min",
    "login.username": "10/min",
    "register.ip": "30/hour",
    "register.username": "10/min",
    # A person votes, changes or retracts a few times a minute; an owner writes a poll and its choices
    # in a burst. Token refresh is per address: many users behind one NAT refresh every few minutes.
    "vote.user": "2/s burst 20",
    "poll_write.user": "1/s burst 20",
    "choice_write.user": "2/s burst 40",
    "token_refresh.ip": "10/s burst 100",
}
DEVELOPMENT_THROTTLE_RATES = {
    "login.ip": "1000/min",
    "login.username": "30/min",
    "register.ip": "300/min",
    "register.username": "30/min",
    # The test suites' busiest users (tests/chaos and tests/e2e/test_gates.py: a changer every 50 ms;
    # scripts/loadgen.py: one owner writes 20 polls with their choices at once) stay well inside;
    # tests/e2e/test_rate_limits.py drains them. The bench stack switches them off.
    "vote.user": "25/s burst 100",
    "poll_write.user": "25/s burst 200",
    "choice_write.user": "50/s burst 400",
    "token_refresh.ip": "25/s burst 200",
}


PERIODS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """``"10/min"`` → ``(10, 60)``; ``"5/30s"`` → ``(5, 30)``; ``"off"``/empty → ``None`` (no limit)."""
    if not rate or rate.strip().lower() in {"off", "none", "0"}:
        return None
    count, _, period = rate.strip().partition("/")
    digits = "".join(ch for ch in period if ch.isdigit())
    unit = period[len(digits) :].strip().lower() or "s"
    if unit not in PERIODS or not count.strip().isdigit():
        raise ValueError(f"invalid rate {rate!r}; use e.g. '10/min'")
    return int(count), PERIODS[unit] * (int(digits) if digits else 1)


_BUDGET = re.compile(r"^\s*(?P<rate>[^\s]+)\s*(?:burst\s+(?P<burst>\d+))?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    """A token bucket: ``burst`` tokens, refilled one every ``interval`` seconds."""

    burst: int
    interval: float

    @property
    def window(self) -> int:
        """Seconds to refill the whole bucket (the ``w`` of ``RateLimit-Policy``)."""
        return max(1, math.ceil(self.burst * self.interval - 1e-9))


@functools.lru_cache(maxsize=64)
def parse_budget(text: str | None) -> Budget | None:
    """``"20/s burst 40"`` → ``Budget(burst=40, interval=0.05)``; ``"300/min"`` → burst 300; ``"off"`` → None."""
    if not text or not text.strip():
        return None
    match = _BUDGET.match(text)
    if not match:
        raise ValueError(f"invalid rate limit {text!r}; use e.g. '20/s burst 40'")
    rate = parse_rate(match["rate"])
    if rate is None:
        return None
    count, period = rate
    burst = int(match["burst"]) if match["burst"] else count
    if count < 1 or burst < 1:
        raise ValueError(f"invalid rate limit {text!r}: count and burst must be at least 1")
    return Budget(burst=burst, interval=period / count)
