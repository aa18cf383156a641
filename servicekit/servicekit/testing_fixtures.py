"""Pytest fixtures a service's unit suite shares: hermetic settings, API clients per caller, fake upstreams.

A service loads them as a plugin from its root ``conftest.py`` and names its fake upstreams in its
app's ``tests/conftest.py``::

    # <service>/conftest.py
    pytest_plugins = ["servicekit.testing_fixtures"]

    # <app>/tests/conftest.py
    from servicekit.testing_fixtures import OWNER_ID, upstream_fixture

    fake_polls = upstream_fixture("POLLS_INTERNAL_URL")

    def test_owner_only(owner, other, fake_polls): ...

- ``hermetic`` (autouse): a cache key prefix of this process's own (concurrent suites share the Redis
  DB), no relay task sent to the broker on commit (outbox rows are asserted directly), and every
  ``*_INTERNAL_URL`` setting pointed at a closed port (a local stack may be up), and the process's
  copy of session revocations (``servicekit.sessions``) forgotten; the test's cache keys are deleted
  afterwards.
- ``client_for(user_id, operator=False)``: an ``APIClient`` sending a real access token (none for
  ``None``); ``anon``, ``owner`` (``OWNER_ID``), ``other`` (``OTHER_ID``), ``operator`` (``OPERATOR_ID``).
- ``upstream_fixture(setting)``: a fixture yielding a ``FakeUpstream`` that ``setting`` points at.
- ``terminate_database_session()``: ends this thread's PostgreSQL session (or another's) from outside.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from servicekit import sessions
from servicekit.testing import bearer, make_access_token
from servicekit.testing_upstream import FakeUpstream

OWNER_ID = 11
OTHER_ID = 22
OPERATOR_ID = 99
# Nothing listens on the discard port: a call to another service fails at once.
UNREACHABLE_URL = "http://127.0.0.1:9"

ClientFor = Callable[..., APIClient]


@pytest.fixture(autouse=True)
def hermetic(settings: Any) -> Iterator[None]:
    """Isolate the test from other suites' cache keys, the broker and any running service."""
    caches = {name: dict(conf) for name, conf in settings.CACHES.items()}
    base = caches["default"].get("KEY_PREFIX", "")
    caches["default"]["KEY_PREFIX"] = f"{base}-test-{os.environ.get('TEST_NAMESPACE', '')}-{os.getpid()}"
    settings.CACHES = caches
    settings.SERVICEKIT = {**settings.SERVICEKIT, "EVENTS_RELAY_ON_COMMIT": False}
    for name in dir(django_settings):
        if name.endswith("_INTERNAL_URL"):
            setattr(settings, name, UNREACHABLE_URL)
    sessions.forget()  # revocations of an earlier test's (rolled back) rows must not refuse this one's tokens
    yield
    sessions.forget()
    from django.core.cache import cache

    # Only this test's prefix, so nothing leaks into the shared Redis DB (suppressed for a test that
    # pointed the cache at a dead server).
    with contextlib.suppress(Exception):
        cache.delete_pattern("*")  # type: ignore[attr-defined]  # django_redis's RedisCache


@pytest.fixture
def client_for() -> ClientFor:
    """``client_for(user_id, operator=False)``: an APIClient sending a real access token."""

    def build(user_id: int | None, *, operator: bool = False) -> APIClient:
        client = APIClient()
        if user_id is not None:
            roles = ("user", "operator") if operator else ("user",)
            client.credentials(**bearer(make_access_token(user_id, f"user{user_id}", roles)))
        return client

    return build


@pytest.fixture
def anon(client_for: ClientFor) -> APIClient:
    """A client sending no token."""
    return client_for(None)


@pytest.fixture
def owner(client_for: ClientFor) -> APIClient:
    """A client acting for ``OWNER_ID``."""
    return client_for(OWNER_ID)


@pytest.fixture
def other(client_for: ClientFor) -> APIClient:
    """A client acting for ``OTHER_ID``, a user who owns nothing the fixtures build."""
    return client_for(OTHER_ID)


@pytest.fixture
def operator(client_for: ClientFor) -> APIClient:
    """A client acting for ``OPERATOR_ID`` with the operator role."""
    return client_for(OPERATOR_ID, operator=True)


def upstream_fixture(setting: str) -> Any:
    """A fixture yielding a running ``FakeUpstream`` with ``settings.<setting>`` pointed at it.

    Assign it to the fixture's name in a conftest: ``fake_votes = upstream_fixture("VOTE_INTERNAL_URL")``.
    """

    @pytest.fixture
    def fake_upstream(settings: Any) -> Iterator[FakeUpstream]:
        with FakeUpstream() as upstream:
            setattr(settings, setting, upstream.url)
            yield upstream

    return fake_upstream


def terminate_database_session(backend_pid: int | None = None) -> None:
    """End a PostgreSQL session from another connection, as a database restart would; by default this thread's."""
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    if backend_pid is None:
        connection.ensure_connection()
        backend_pid = connection.connection.info.backend_pid
    with psycopg.connect(
        host=params.get("host"), port=params.get("port"), user=params.get("user"), dbname=params["dbname"],
        autocommit=True,
    ) as other:  # fmt: skip
        other.execute("SELECT pg_terminate_backend(%s)", [backend_pid])


def sessions_revoked_event(user_id: int, generation: int) -> Any:
    """A ``user.sessions_revoked`` event as polls_service emits it (the envelope's version is the generation)."""
    import uuid
    from datetime import UTC, datetime

    from servicekit.events import Event

    return Event(
        version=generation,
        id=str(uuid.uuid4()),
        type="user.sessions_revoked",
        occurred_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        producer="polls",
        aggregate_id=str(user_id),
        data={"user_id": user_id, "generation": generation, "reason": "logout_everywhere"},
    )


def assert_sessions_revoked_refuses_older_tokens(client_for: ClientFor, url: str) -> None:
    """After this service consumed ``user.sessions_revoked``, ``GET url`` refuses the owner's older tokens only.

    Generation 2 then a late generation 1: the held generation only moves up; tokens of generation 1 are
    refused (401, "revoked"), of 2 and 3 accepted, and another user is untouched.
    """
    from servicekit.events.inbox import apply_event

    assert client_for(OWNER_ID).get(url).status_code == 200
    apply_event(sessions_revoked_event(OWNER_ID, 2))
    apply_event(sessions_revoked_event(OWNER_ID, 1))  # late and older: changes nothing
    refused = client_for(OWNER_ID).get(url)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    for generation, status in ((1, 401), (2, 200), (3, 200)):
        token = make_access_token(OWNER_ID, f"user{OWNER_ID}", ("user",), sgen=generation)
        holder = APIClient()
        holder.credentials(**bearer(token))
        assert holder.get(url).status_code == status, generation
    assert client_for(OWNER_ID + 1).get(url).status_code == 200  # someone else
