"""Login and registration budgets per client IP and per username, shared through Redis; client IP rules."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from accounts.tests.conftest import PASSWORD, fresh_ip, fresh_username
from servicekit.throttling import client_ip, parse_rate

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    def set_rates(**rates: str) -> None:
        settings.SERVICEKIT = {
            **settings.SERVICEKIT,
            "THROTTLE_RATES": {**settings.SERVICEKIT["THROTTLE_RATES"], **rates},
        }

    return set_rates


def _login(client, username: str, ip: str, password: str = "wrong password!", **extra):
    return client.post(
        "/api/v1/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=ip,
        **extra,
    )


def test_username_budget_then_429_with_retry_after(client, user, rates) -> None:
    rates(**{"login.username": "3/min", "login.ip": "1000/min"})
    statuses = [_login(client, user.username, fresh_ip()).status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    refused = _login(client, user.username, fresh_ip(), password=PASSWORD)  # even the right password
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["status"] == 429


def test_username_budget_ignores_case_and_whitespace(client, user, rates) -> None:
    rates(**{"login.username": "2/min"})
    _login(client, user.username.upper(), fresh_ip())
    _login(client, f"  {user.username} ", fresh_ip())
    assert _login(client, user.username.lower(), fresh_ip()).status_code == 429


def test_ip_budget_covers_many_usernames(client, rates) -> None:
    rates(**{"login.ip": "4/min", "login.username": "1000/min"})
    ip = fresh_ip()
    assert [_login(client, fresh_username(), ip).status_code for _ in range(4)] == [401] * 4
    assert _login(client, fresh_username(), ip).status_code == 429
    assert _login(client, fresh_username(), fresh_ip()).status_code == 401  # another client is unaffected


def test_spoofed_forwarded_for_from_an_untrusted_client_buys_nothing(client, rates) -> None:
    rates(**{"login.ip": "2/min", "login.username": "1000/min"})
    ip = fresh_ip()
    for n in range(2):
        _login(client, fresh_username(), ip, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}", HTTP_X_REAL_IP=f"203.0.113.{n}")
    assert _login(client, fresh_username(), ip, HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429


def test_register_is_throttled_per_ip(client, rates) -> None:
    rates(**{"register.ip": "2/min"})
    ip = fresh_ip()
    for _ in range(2):
        response = client.post(
            "/api/v1/auth/register/",
            {"username": fresh_username(), "password": PASSWORD},
            content_type="application/json",
            REMOTE_ADDR=ip,
        )
        assert response.status_code == 201
    response = client.post(
        "/api/v1/auth/register/",
        {"username": fresh_username(), "password": PASSWORD},
        content_type="application/json",
        REMOTE_ADDR=ip,
    )
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1


def test_register_is_throttled_per_username(client, rates) -> None:
    rates(**{"register.username": "2/min"})
    name = fresh_username()
    for _ in range(2):  # the second one is a 409 (taken) but still counts
        client.post(
            "/api/v1/auth/register/",
            {"username": name, "password": PASSWORD},
            content_type="application/json",
            REMOTE_ADDR=fresh_ip(),
        )
    response = client.post(
        "/api/v1/auth/register/",
        {"username": name.upper(), "password": PASSWORD},
        content_type="application/json",
        REMOTE_ADDR=fresh_ip(),
    )
    assert response.status_code == 429


def test_off_disables_a_budget(client, user, rates) -> None:
    rates(**{"login.username": "off", "login.ip": "off"})
    assert {_login(client, user.username, "198.51.100.7").status_code for _ in range(12)} == {401}


@pytest.mark.parametrize(
    ("remote", "forwarded", "real", "expected"),
    [
        ("198.51.100.1", "", "", "198.51.100.1"),  # direct client
        ("198.51.100.1", "203.0.113.5", "203.0.113.5", "198.51.100.1"),  # untrusted peer: headers ignored
        ("127.0.0.1", "203.0.113.5", "203.0.113.5", "203.0.113.5"),  # through the gateway
        ("127.0.0.1", "6.6.6.6, 203.0.113.5", "203.0.113.5", "203.0.113.5"),  # spoofed left part ignored
        ("127.0.0.1", "6.6.6.6, 203.0.113.5, 127.0.0.1", "", "203.0.113.5"),  # chained trusted proxies
        ("127.0.0.1", "", "203.0.113.9", "203.0.113.9"),  # X-Real-IP only
        ("127.0.0.1", "", "", "127.0.0.1"),  # local caller, no headers
        ("127.0.0.1", "not-an-ip", "", "127.0.0.1"),
        ("::1", "2001:db8::5", "", "2001:db8::5"),
        ("127.0.0.1", "[2001:db8::7]:4711, 203.0.113.5:8080", "", "203.0.113.5"),
    ],
)
def test_client_ip(remote, forwarded, real, expected) -> None:
    meta = {"REMOTE_ADDR": remote}
    if forwarded:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    if real:
        meta["HTTP_X_REAL_IP"] = real
    assert client_ip(RequestFactory().get("/", **meta)) == expected


def test_trusted_proxies_accept_networks(settings) -> None:
    settings.SERVICEKIT = {**settings.SERVICEKIT, "TRUSTED_PROXIES": ("10.0.0.0/8",)}
    request = RequestFactory().get("/", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="203.0.113.5, 10.9.9.9")
    assert client_ip(request) == "203.0.113.5"
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert client_ip(request) == "127.0.0.1"  # loopback is no longer trusted


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [
        ("10/min", (10, 60)),
        ("5/30s", (5, 30)),
        ("100/hour", (100, 3600)),
        ("2/day", (2, 86400)),
        ("off", None),
        ("", None),
    ],
)
def test_parse_rate(rate, parsed) -> None:
    assert parse_rate(rate) == parsed


def test_parse_rate_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        parse_rate("ten/min")
    with pytest.raises(ValueError):
        parse_rate("10/fortnight")


def test_hit_counts_atomically_in_redis_with_a_window_from_the_first_attempt() -> None:
    import uuid

    from django.core.cache import cache
    from django_redis import get_redis_connection

    from servicekit.throttling import hit

    key = f"unit:{uuid.uuid4().hex}"
    results = [hit(key, 3, 60) for _ in range(4)]
    assert [allowed for allowed, _ in results] == [True, True, True, False]
    assert all(1 <= wait <= 60 for _, wait in results)
    redis = get_redis_connection("default")
    full_key = cache.make_key(f"throttle:{key}")
    assert int(redis.get(full_key)) == 4 and 0 < redis.ttl(full_key) <= 60

    # A counter that somehow lost its expiry is given one again instead of blocking forever.
    redis.persist(full_key)
    allowed, wait = hit(key, 3, 60)
    assert not allowed and redis.ttl(full_key) > 0 and wait >= 1
