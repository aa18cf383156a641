"""Resilient service-to-service HTTP: short timeouts, bounded jittered retries, a shared circuit breaker.

A service asks another on a replica miss::

    from servicekit.http import ServiceClient

    polls = service_client("polls", settings.POLLS_INTERNAL_URL)   # one client per target per process
    poll = polls.get_json(f"/internal/polls/{poll_id}/")     # dict, or None on 404

- Every request carries this service's own short-lived token for the called service
  (``Authorization: Service <JWT>``, ``servicekit.service_identity``; never a user's token) and the
  current request id (``X-Request-ID``).
- Connection errors, timeouts and 5xx answers are retried (``HTTP_CLIENT_RETRIES`` times, exponential
  backoff with full jitter), within a total budget of ``HTTP_CLIENT_DEADLINE`` seconds.
- A call that still fails counts against a pybreaker ``CircuitBreaker`` whose state lives in the
  Django cache (Redis in production), so every web worker and Celery process of the service
  shares it. After ``HTTP_CLIENT_BREAKER_FAIL_MAX`` consecutive failed calls it opens: calls fail at
  once (no network) for ``HTTP_CLIENT_BREAKER_RESET`` seconds, then one trial call decides.
- Failures surface as ``servicekit.errors.ServiceUnavailable`` (503 problem+json with ``Retry-After``);
  with the breaker open that happens without touching the network. Other 4xx answers (a bug or a
  credential mismatch between services) raise ``UpstreamError`` (502) and do not trip the breaker.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import pybreaker
import requests
from django.core.cache import cache
from prometheus_client import Counter, Gauge

from servicekit import service_identity
from servicekit.conf import servicekit_settings
from servicekit.errors import Problem, ServiceUnavailable

logger = logging.getLogger(__name__)

servicekit_settings.register_defaults(
    {
        # (connect, read) timeout of one attempt, seconds.
        "HTTP_CLIENT_TIMEOUT": (0.5, 2.0),
        # Extra attempts after the first, for connection errors, timeouts and 5xx.
        "HTTP_CLIENT_RETRIES": 2,
        # Backoff base between attempts (doubles each time, full jitter), seconds.
        "HTTP_CLIENT_BACKOFF": 0.05,
        # Total time one call may take including retries, seconds.
        "HTTP_CLIENT_DEADLINE": 3.0,
        # Consecutive failed calls that open the breaker, and how long it stays open, seconds.
        "HTTP_CLIENT_BREAKER_FAIL_MAX": 5,
        "HTTP_CLIENT_BREAKER_RESET": 10.0,
    }
)

CALLS = Counter("service_client_calls_total", "Calls to other services, by target and outcome.", ["target", "outcome"])
# 0 closed, 1 half-open, 2 open; set by the process that moved the shared breaker (the latest write wins).
BREAKER_STATE = Gauge(
    "service_client_breaker_state",
    "Circuit breaker towards another service: 0 closed, 1 half-open, 2 open.",
    ["target"],
    multiprocess_mode="mostrecent",
)
BREAKER_STATES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}


class _BreakerMetrics(pybreaker.CircuitBreakerListener):
    """Publishes each state change of a breaker as ``service_client_breaker_state``."""

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        try:
            BREAKER_STATE.labels(cb.name).set(BREAKER_STATES.get(new_state.name, 0))
        except Exception:
            logger.exception("could not record the breaker state")


class UpstreamError(Problem):
    """The other service answered with a 4xx other than 404 (502 to our caller, unless the caller
    handles it: ``upstream_status`` and ``upstream_body`` say what the other service answered)."""

    status_code = 502
    default_detail = "Another service rejected this service's request."
    default_code = "bad-gateway"

    def __init__(self, *args: Any, upstream_status: int | None = None, upstream_body: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.upstream_status = upstream_status
        self.upstream_body = upstream_body


class _RetryableFailure(Exception):
    """A 5xx answer: counts as a failure of the other service."""


class CacheBreakerStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker state in the Django cache, shared by every process of the service.

    When the cache itself fails, a process-local memory copy is used instead (a breaker must never
    become the outage).
    """

    def __init__(self, name: str, state: str = pybreaker.STATE_CLOSED):
        super().__init__(name)
        self._prefix = f"servicekit:breaker:{name}:"
        self._local = pybreaker.CircuitMemoryStorage(state)
        self._initial = state

    def _get(self, key: str, default: Any) -> Any:
        try:
            value = cache.get(self._prefix + key)
        except Exception:
            return None
        return default if value is None else value

    def _set(self, key: str, value: Any) -> None:
        try:
            cache.set(self._prefix + key, value, timeout=None)
        except Exception:
            logger.warning("breaker state not shared: cache unavailable", extra={"breaker": self.name})

    def _incr(self, key: str) -> None:
        try:
            cache.add(self._prefix + key, 0, timeout=None)
            cache.incr(self._prefix + key)
        except ValueError:  # expired between add and incr
            self._set(key, 1)
        except Exception:
            logger.warning("breaker counter not shared: cache unavailable", extra={"breaker": self.name})

    @property
    def state(self) -> str:
        value = self._get("state", self._initial)
        return self._local.state if value is None else value

    @state.setter
    def state(self, state: str) -> None:
        self._local.state = state
        self._set("state", state)

    def increment_counter(self) -> None:
        self._local.increment_counter()
        self._incr("fail_counter")

    def reset_counter(self) -> None:
        self._local.reset_counter()
        self._set("fail_counter", 0)

    def increment_success_counter(self) -> None:
        self._local.increment_success_counter()
        self._incr("success_counter")

    def reset_success_counter(self) -> None:
        self._local.reset_success_counter()
        self._set("success_counter", 0)

    @property
    def counter(self) -> int:
        value = self._get("fail_counter", 0)
        return self._local.counter if value is None else int(value)

    @property
    def success_counter(self) -> int:
        value = self._get("success_counter", 0)
        return self._local.success_counter if value is None else int(value)

    @property
    def opened_at(self) -> datetime | None:
        value = self._get("opened_at", 0.0)
        if value is None:
            return self._local.opened_at
        return datetime.fromtimestamp(float(value), UTC) if value else None

    @opened_at.setter
    def opened_at(self, when: datetime) -> None:
        self._local.opened_at = when
        self._set("opened_at", when.timestamp())


class ServiceClient:
    """JSON over HTTP to another service of the platform, guarded by retries and a shared breaker."""

    def __init__(self, name: str, *, base_url: str, breaker_name: str | None = None):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.storage = CacheBreakerStorage(breaker_name or f"{name}@{self.base_url}")
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=servicekit_settings.HTTP_CLIENT_BREAKER_FAIL_MAX,
            reset_timeout=servicekit_settings.HTTP_CLIENT_BREAKER_RESET,
            state_storage=self.storage,
            exclude=[UpstreamError],
            listeners=[_BreakerMetrics()],
            name=name,
        )
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"<ServiceClient {self.name} {self.base_url} breaker={self.breaker.current_state}>"

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    @property
    def breaker_state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"`` as every process of the service sees it."""
        return self.breaker.current_state

    def reset_breaker(self) -> None:
        """Close the breaker for every process (operators, tests)."""
        self.breaker.close()

    def get_json(self, path: str, *, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """GET ``path``: the decoded JSON body, or ``None`` on 404. Raises ``ServiceUnavailable``/``UpstreamError``."""
        return self.request_json("GET", path, params=params)

    def request_json(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> dict[str, Any] | None:
        """Any method; same contract as ``get_json``."""
        self.breaker.fail_max = servicekit_settings.HTTP_CLIENT_BREAKER_FAIL_MAX
        self.breaker.reset_timeout = servicekit_settings.HTTP_CLIENT_BREAKER_RESET
        try:
            result = self.breaker.call(self._attempts, method, path, params, json)
        except pybreaker.CircuitBreakerError as exc:
            CALLS.labels(self.name, "breaker_open").inc()
            raise ServiceUnavailable(
                f"The {self.name} service is unavailable; try again shortly.",
                headers={"Retry-After": str(self._retry_after())},
            ) from exc
        except (requests.RequestException, _RetryableFailure) as exc:
            CALLS.labels(self.name, "failed").inc()
            raise ServiceUnavailable(
                f"The {self.name} service did not answer in time; try again shortly.",
                headers={"Retry-After": "1"},
            ) from exc
        CALLS.labels(self.name, "ok" if result is not None else "not_found").inc()
        return result

    def _retry_after(self) -> int:
        opened_at = self.storage.opened_at
        if opened_at is None:
            return 1
        remaining = opened_at.timestamp() + self.breaker.reset_timeout - time.time()
        return max(1, math.ceil(remaining))

    def _headers(self) -> dict[str, str]:
        # The client's name is the called service's: the token's audience.
        headers = {"Accept": "application/json", "Authorization": service_identity.authorization(self.name)}
        try:
            from servicekit.logging import request_id_var

            request_id = request_id_var.get()
            if request_id:
                headers["X-Request-ID"] = request_id
        except Exception:  # logging context is optional
            pass
        return headers

    def _attempts(self, method: str, path: str, params: Any, json: Any) -> dict[str, Any] | None:
        url = self.base_url + path
        retries = servicekit_settings.HTTP_CLIENT_RETRIES
        deadline = time.monotonic() + servicekit_settings.HTTP_CLIENT_DEADLINE
        connect_timeout, read_timeout = servicekit_settings.HTTP_CLIENT_TIMEOUT
        attempt = 0
        while True:
            left = deadline - time.monotonic()
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers=self._headers(),
                    timeout=(min(connect_timeout, max(left, 0.05)), min(read_timeout, max(left, 0.05))),
                )
                if response.status_code >= 500:
                    raise _RetryableFailure(f"{self.name} answered {response.status_code}")
            except (requests.ConnectionError, requests.Timeout, _RetryableFailure) as exc:
                delay = random.uniform(0, servicekit_settings.HTTP_CLIENT_BACKOFF * (2**attempt))
                if attempt >= retries or time.monotonic() + delay >= deadline:
                    logger.warning(
                        "service call failed",
                        extra={"target": self.name, "url": url, "attempts": attempt + 1, "error": repr(exc)[:300]},
                    )
                    raise
                attempt += 1
                time.sleep(delay)
                continue
            if response.status_code == 404:
                return None
            if response.status_code >= 400:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                raise UpstreamError(
                    f"The {self.name} service answered {response.status_code} to {method} {path}.",
                    upstream_status=response.status_code,
                    upstream_body=body,
                )
            if response.status_code == 204 or not response.content:
                return {}
            document: dict[str, Any] | None = response.json()
            return document


@lru_cache(maxsize=16)
def service_client(name: str, base_url: str) -> ServiceClient:
    """The process-wide client for ``name`` at ``base_url``: built on first use, so the URL follows
    settings (tests point it elsewhere), and reused, so its keep-alive session is too."""
    return ServiceClient(name, base_url=base_url)
