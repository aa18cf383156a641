"""Fixtures of the polls tests: callers with real access tokens (owner, another user, operator, anonymous)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from polls import clients
from polls.tests.upstream import GateUpstream
from servicekit.principal import Principal
from servicekit.testing import auth_headers


@dataclass
class Caller:
    """An API client that sends one identity's access token (or none)."""

    client: APIClient
    principal: Principal | None

    @property
    def id(self) -> int | None:
        return self.principal.id if self.principal else None

    def _call(self, method: str, path: str, data: Any = None, **extra: Any) -> Any:
        kwargs: dict[str, Any] = {**extra}
        if data is not None:
            kwargs.setdefault("format", "json")
        return getattr(self.client, method)(path, data, **kwargs)

    def get(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.client.get(path, data, **extra)

    def post(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self._call("post", path, data, **extra)

    def patch(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self._call("patch", path, data, **extra)

    def delete(self, path: str, **extra: Any) -> Any:
        return self.client.delete(path, **extra)


def make_caller(user_id: int | None, username: str = "", roles: tuple[str, ...] = ("user",)) -> Caller:
    client = APIClient()
    if user_id is None:
        return Caller(client, None)
    client.credentials(**auth_headers(user_id, username, roles))
    return Caller(client, Principal(id=user_id, username=username, roles=frozenset(roles)))


@pytest.fixture
def owner() -> Caller:
    return make_caller(1, "olivia")


@pytest.fixture
def other() -> Caller:
    return make_caller(2, "oscar")


@pytest.fixture
def operator() -> Caller:
    return make_caller(99, "opal", ("user", "operator"))


@pytest.fixture
def anonymous() -> Caller:
    return make_caller(None)


@pytest.fixture(autouse=True)
def fake_choices(settings: Any) -> Iterator[GateUpstream]:
    """choice_service (its freeze gate) as a real HTTP server on a free port (never whatever runs on 8002)."""
    with _gate(settings, "CHOICE_INTERNAL_URL") as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def fake_votes(settings: Any) -> Iterator[GateUpstream]:
    """vote_service (its seal gate) as a real HTTP server on a free port (never whatever runs on 8003)."""
    with _gate(settings, "VOTE_INTERNAL_URL") as upstream:
        yield upstream


@contextmanager
def _gate(settings: Any, setting: str) -> Iterator[GateUpstream]:
    with GateUpstream() as upstream:
        setattr(settings, setting, upstream.url)
        try:
            yield upstream
        finally:
            # Breaker state is shared through the cache: a test that broke a gate must not open it for the next.
            for client in (clients._choices_client(), clients._votes_client()):
                client.reset_breaker()


@pytest.fixture
def with_choices(fake_choices: GateUpstream) -> Callable[[Any, int], None]:
    """Make choice_service hold ``n`` choices for a poll (what its freeze gate counts)."""

    def give(poll: Any, n: int) -> None:
        fake_choices.choices[str(poll.id)] = n

    return give


@pytest.fixture
def outbox() -> Callable[..., list[dict[str, Any]]]:
    """The envelopes emitted so far (optionally of one type), oldest first."""
    from servicekit.events.models import OutboxEvent

    def envelopes(event_type: str | None = None) -> list[dict[str, Any]]:
        rows = OutboxEvent.objects.order_by("id")
        if event_type:
            rows = rows.filter(event_type=event_type)
        return [row.envelope for row in rows]

    return envelopes
