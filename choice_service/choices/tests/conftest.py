"""Fixtures of the choices suite: API clients per caller, poll replicas, fake upstream services."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import pytest
from rest_framework.test import APIClient

from choices.models import PollReplica
from choices.tests.factories import PollReplicaFactory
from servicekit.testing import bearer, make_access_token
from servicekit.testing_upstream import FakeUpstream

OWNER_ID = 11
OTHER_ID = 22
OPERATOR_ID = 99


@pytest.fixture(autouse=True)
def _isolated_cache_and_relay(settings) -> Iterator[None]:
    # Concurrent suites share the Redis DB: a key prefix of our own keeps breakers and idempotency apart.
    caches = {name: dict(conf) for name, conf in settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = f"choices-test-{os.environ.get('TEST_NAMESPACE', '')}-{os.getpid()}"
    settings.CACHES = caches
    # No relay task is sent to the broker from unit tests; outbox rows are asserted directly.
    settings.SERVICEKIT = {**settings.SERVICEKIT, "EVENTS_RELAY_ON_COMMIT": False}
    # Hermetic: other services are unreachable unless a test starts a fake one (a local stack may be up).
    settings.POLLS_INTERNAL_URL = settings.VOTE_INTERNAL_URL = "http://127.0.0.1:9"
    yield
    from django.core.cache import cache

    # Only this test's prefix, so nothing leaks into the shared Redis DB (suppressed for a test that
    # pointed the cache at a dead server).
    with contextlib.suppress(Exception):
        cache.delete_pattern("*")


@pytest.fixture
def client_for() -> Callable[..., APIClient]:
    """``client_for(user_id, operator=False)``: an APIClient sending a real access token."""

    def build(user_id: int | None, *, operator: bool = False) -> APIClient:
        client = APIClient()
        if user_id is not None:
            roles = ("user", "operator") if operator else ("user",)
            client.credentials(**bearer(make_access_token(user_id, f"user{user_id}", roles)))
        return client

    return build


@pytest.fixture
def anon(client_for) -> APIClient:
    return client_for(None)


@pytest.fixture
def owner(client_for) -> APIClient:
    return client_for(OWNER_ID)


@pytest.fixture
def other(client_for) -> APIClient:
    return client_for(OTHER_ID)


@pytest.fixture
def operator(client_for) -> APIClient:
    return client_for(OPERATOR_ID, operator=True)


@pytest.fixture
def draft_poll(db) -> PollReplica:
    return PollReplicaFactory(owner_id=OWNER_ID, status="draft")


@pytest.fixture
def open_poll(db) -> PollReplica:
    return PollReplicaFactory(owner_id=OWNER_ID, status="open")


@pytest.fixture
def fake_polls(settings) -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        settings.POLLS_INTERNAL_URL = upstream.url
        yield upstream


@pytest.fixture
def fake_votes(settings) -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        settings.VOTE_INTERNAL_URL = upstream.url
        yield upstream
