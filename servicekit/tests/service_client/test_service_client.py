"""ServiceClient: credential, retries on 5xx/connection errors, a breaker shared through the cache."""

from __future__ import annotations

import json
import socket
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from joserfc import jws

from servicekit.conf import servicekit_settings
from servicekit.errors import ServiceUnavailable
from servicekit.http import ServiceClient, UpstreamError
from servicekit.testing_upstream import FakeUpstream


@pytest.fixture
def upstream():
    with FakeUpstream() as server:
        yield server


@pytest.fixture(autouse=True)
def fast_client(settings):
    settings.SERVICEKIT = {
        **settings.SERVICEKIT,
        "HTTP_CLIENT_BACKOFF": 0.001,
        "HTTP_CLIENT_RETRIES": 2,
        "HTTP_CLIENT_BREAKER_FAIL_MAX": 3,
        "HTTP_CLIENT_BREAKER_RESET": 30.0,
    }


def closed_port() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def client(url: str) -> ServiceClient:
    return ServiceClient("polls", base_url=url, breaker_name=f"test-{uuid.uuid4()}")


def test_get_json_sends_the_service_credential(upstream):
    upstream.respond("/internal/polls/1/", {"id": 1})
    body = client(upstream.url).get_json("/internal/polls/1/")
    assert body == {"id": 1}
    headers = upstream.requests[0].headers
    scheme, _, token = headers["Authorization"].partition(" ")
    assert scheme == "Service"
    claims = json.loads(jws.extract_compact(token.encode()).payload)
    # Signed as this service (the kit suite holds vote_service's test key); the client's name is the audience.
    me = servicekit_settings.SERVICE_NAME
    assert (claims["iss"], claims["sub"], claims["aud"], claims["token_type"]) == (me, me, "polls", "service")
    assert claims["exp"] - claims["iat"] == 60
    assert headers["Accept"] == "application/json"
    client(upstream.url).get_json("/internal/polls/1/")
    assert upstream.requests[1].authorization == headers["Authorization"]  # reused, not re-signed


def test_not_found_is_none(upstream):
    # The fake upstream answers 404 for a path it was given no answer for.
    assert client(upstream.url).get_json("/internal/polls/2/") is None
    assert len(upstream.requests) == 1  # a 404 is an answer, not a failure: no retry


def test_server_errors_are_retried(upstream):
    upstream.respond("/x/", {"id": "x"})
    upstream.fail_next("/x/", 503, 500)
    assert client(upstream.url).get_json("/x/") == {"id": "x"}
    assert len(upstream.requests) == 3


def test_bounded_retries_then_503_with_retry_after(upstream):
    upstream.fail("/x/", status=502)
    with pytest.raises(ServiceUnavailable) as raised:
        client(upstream.url).get_json("/x/")
    assert len(upstream.requests) == 3  # 1 + HTTP_CLIENT_RETRIES
    assert raised.value.status_code == 503
    assert raised.value.headers["Retry-After"] == "1"


def test_other_client_errors_are_502_and_do_not_trip_the_breaker(upstream):
    upstream.fail("/x/", status=403)
    c = client(upstream.url)
    for _ in range(5):
        with pytest.raises(UpstreamError):
            c.get_json("/x/")
    assert c.breaker_state == "closed"
    assert len(upstream.requests) == 5


def test_breaker_opens_fails_fast_without_network_and_is_shared(upstream):
    upstream.fail("/x/", status=500)
    c = client(upstream.url)
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            c.get_json("/x/")
    assert c.breaker_state == "open"
    sent = len(upstream.requests)
    with pytest.raises(ServiceUnavailable) as raised:
        c.get_json("/x/")
    assert len(upstream.requests) == sent  # no request while open
    assert 1 <= int(raised.value.headers["Retry-After"]) <= 30
    # Another process's client (same breaker name) sees the same open breaker.
    other = ServiceClient("polls", base_url=upstream.url, breaker_name=c.storage.name)
    assert other.breaker_state == "open"
    with pytest.raises(ServiceUnavailable):
        other.get_json("/x/")
    assert len(upstream.requests) == sent


def test_breaker_closes_after_recovery(upstream):
    upstream.fail("/x/", status=500)
    c = client(upstream.url)
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            c.get_json("/x/")
    assert c.breaker_state == "open"
    upstream.respond("/y/", {"id": "y"})
    # The reset timeout has passed (as if 31 s went by): the next call is the trial.
    c.storage.opened_at = datetime.now(UTC) - timedelta(seconds=31)
    assert c.get_json("/y/") == {"id": "y"}
    assert c.breaker_state == "closed"


def test_failed_trial_reopens(upstream):
    upstream.fail("/x/", status=500)
    c = client(upstream.url)
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            c.get_json("/x/")
    c.storage.opened_at = datetime.now(UTC) - timedelta(seconds=31)
    with pytest.raises(ServiceUnavailable):
        c.get_json("/x/")
    assert c.breaker_state == "open"


def test_unreachable_service_opens_the_breaker():
    c = client(closed_port())
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            c.get_json("/x/")
    assert c.breaker_state == "open"
