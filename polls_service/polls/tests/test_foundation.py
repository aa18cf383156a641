"""Foundation behaviour of a service: health, readiness, metrics, request ids and problem+json."""

import pytest
from django.test import Client


@pytest.fixture
def client() -> Client:
    return Client()


def test_healthz_answers_without_touching_dependencies(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "polls"}


@pytest.mark.django_db
def test_readyz_checks_database_cache_and_broker(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}


def test_request_id_is_echoed_or_generated(client: Client) -> None:
    echoed = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    assert echoed["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert generated["X-Request-ID"] != "bad id\nwith newline"
    assert len(generated["X-Request-ID"]) == 32


def test_unknown_path_is_problem_json(client: Client) -> None:
    response = client.get("/no/such/path")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404 and body["instance"] == "/no/such/path"


def test_metrics_count_requests_by_route(client: Client) -> None:
    client.get("/healthz")
    body = client.get("/metrics").content.decode()
    assert 'http_requests_total{method="GET",route="/healthz",service="polls",status="200"}' in body
