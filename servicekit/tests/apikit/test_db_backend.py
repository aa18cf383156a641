"""servicekit.db.postgresql: the per-request health check is skipped for a connection that finished a
request cleanly moments ago, and a connection lost inside that grace costs one 503, never a 500."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connections
from django.test import RequestFactory

from servicekit.testing_fixtures import terminate_database_session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("apikit.views")]

connection = connections["default"]


class WSGIClient:
    """Requests through Django's real WSGI handler: unlike the test ``Client``, it runs the per-request
    connection housekeeping (``close_old_connections`` on request start and end) that matters here."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()

    def get(self, path: str) -> SimpleNamespace:
        environ = RequestFactory()._base_environ(PATH_INFO=path, REQUEST_METHOD="GET", HTTP_ACCEPT="application/json")
        started: dict = {}
        body = b"".join(self.handler(environ, lambda status, headers, exc=None: started.update(s=status, h=headers)))
        headers = dict(started["h"])
        return SimpleNamespace(status_code=int(started["s"].split()[0]), headers=headers, json=lambda: json.loads(body))


@pytest.fixture
def client() -> WSGIClient:
    return WSGIClient()


@pytest.fixture
def usable_calls(monkeypatch) -> list[int]:
    """Counts the health check's ``SELECT 1`` (``is_usable``), which still runs for real."""
    calls: list[int] = []
    real = type(connection).is_usable

    def counting(self) -> bool:
        calls.append(1)
        return real(self)

    monkeypatch.setattr(type(connection), "is_usable", counting)
    return calls


@pytest.fixture
def grace(monkeypatch):
    def set_grace(seconds: float) -> None:
        monkeypatch.setitem(connection.settings_dict, "HEALTH_CHECK_GRACE", seconds)

    return set_grace


def test_the_engine_is_servicekits() -> None:
    assert connection.settings_dict["ENGINE"] == "servicekit.db.postgresql"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_recently_used_connection_is_not_checked_again(client, usable_calls, grace) -> None:
    grace(60.0)
    assert client.get("/api/v1/groups/").status_code == 200
    usable_calls.clear()
    for _ in range(3):
        assert client.get("/api/v1/groups/").status_code == 200
    assert usable_calls == []


def test_without_grace_every_request_checks_its_connection(client, usable_calls, grace) -> None:
    grace(0.0)
    assert client.get("/api/v1/groups/").status_code == 200
    usable_calls.clear()
    for _ in range(3):
        assert client.get("/api/v1/groups/").status_code == 200
    assert len(usable_calls) == 3


def test_a_connection_lost_inside_the_grace_costs_one_503_then_reconnects(client, grace) -> None:
    grace(60.0)
    assert client.get("/api/v1/groups/").status_code == 200
    terminate_database_session()

    lost = client.get("/api/v1/groups/")
    assert lost.status_code == 503
    assert lost.headers["Content-Type"].startswith("application/problem+json")
    assert lost.headers["Retry-After"] == "1"
    assert lost.json()["status"] == 503 and "database" in lost.json()["detail"]

    assert client.get("/api/v1/groups/").status_code == 200


def test_reopening_once_runs_a_statement_again_on_a_new_connection() -> None:
    from servicekit.db.reconnect import reopening_once

    def backend() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return int(cursor.fetchone()[0])

    first, again = reopening_once(backend)
    assert not again
    terminate_database_session(first)
    second, again = reopening_once(backend)
    assert again and second != first  # the dead connection was closed, the statement ran on a new one


def test_reopening_once_inside_a_transaction_raises() -> None:
    from django.db import OperationalError, transaction

    from servicekit.db.reconnect import reopening_once

    terminate_database_session()
    calls = []

    def select() -> None:
        calls.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    with pytest.raises(OperationalError), transaction.atomic():
        reopening_once(select)
    assert calls == [1]  # the transaction's work is lost with its connection: not run again
    connection.close()
