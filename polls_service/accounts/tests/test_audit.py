"""The auth endpoints' audit entries and the detection rules they feed (real Redis and PostgreSQL).

Each rule is provoked with a low threshold; its answer (a block, a revoked token family), its
``threat.*`` entry and its metric are checked.
"""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client import REGISTRY
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.tests.conftest import PASSWORD, fresh_ip, fresh_username
from servicekit.models import AuditEntry
from servicekit.testing import TEST_AUDIENCE, TEST_ISSUER, assert_unauthorized, bearer

pytestmark = pytest.mark.django_db


def _threats(kind: str) -> float:
    return REGISTRY.get_sample_value("security_threats_detected_total", {"service": "polls", "kind": kind}) or 0


def _login(client, username: str, ip: str, password: str = "wrong password!"):
    return client.post(
        "/api/v1/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=ip,
    )


@pytest.fixture
def rules(settings):
    """Lower the detection thresholds (and switch the credential budgets off so only the rules answer)."""

    def set_rules(**values) -> None:
        settings.SERVICEKIT = {
            **settings.SERVICEKIT,
            "THROTTLE_RATES": dict.fromkeys(settings.SERVICEKIT["THROTTLE_RATES"], "off"),
            **values,
        }

    return set_rules


def test_login_register_refresh_and_logout_are_audited(client) -> None:
    ip = fresh_ip()
    username = fresh_username()
    registered = client.post(
        "/api/v1/auth/register/",
        {"username": username, "password": PASSWORD},
        content_type="application/json",
        REMOTE_ADDR=ip,
    )
    assert registered.status_code == 201
    assert _login(client, username, ip).status_code == 401
    pair = _login(client, username, ip, PASSWORD).json()
    rotated = client.post(
        "/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, content_type="application/json", REMOTE_ADDR=ip
    ).json()
    assert (
        client.post(
            "/api/v1/auth/logout/", {"refresh": rotated["refresh"]}, content_type="application/json", REMOTE_ADDR=ip
        ).status_code
        == 204
    )
    entries = list(AuditEntry.objects.filter(actor_username=username).order_by("id"))
    assert [(e.event, e.outcome) for e in entries] == [
        ("auth.register", "success"),
        ("auth.login", "failure"),
        ("auth.login", "success"),
        ("auth.refresh", "success"),
        ("auth.logout", "success"),
    ]
    user_id = str(registered.json()["id"])
    assert all(e.client_address == ip and e.service == "polls" and e.request_id for e in entries)
    assert [e.actor_id for e in entries[2:]] == [user_id] * 3


def test_brute_force_on_one_account_blocks_its_login_for_a_while(client, make_user, rules) -> None:
    rules(DETECT_BRUTE_FORCE="3/15m")
    user = make_user()
    before = _threats("brute_force")
    # Spread over addresses: the rule follows the account, not the client.
    assert [_login(client, user.username, fresh_ip()).status_code for _ in range(3)] == [401, 401, 401]
    blocked = _login(client, user.username.upper(), fresh_ip(), PASSWORD)  # even the right password, any case
    assert blocked.status_code == 429
    assert blocked["Content-Type"] == "application/problem+json" and int(blocked["Retry-After"]) > 60
    assert _threats("brute_force") == before + 1
    (threat,) = AuditEntry.objects.filter(event="threat.brute_force", actor_username=user.username.casefold())
    assert threat.outcome == "detected" and threat.detail["failures"] == 3
    assert AuditEntry.objects.filter(event="access.throttled", path="/api/v1/auth/token/").exists()
    # Another account is unaffected.
    other = make_user()
    assert _login(client, other.username, fresh_ip(), PASSWORD).status_code == 200


def test_credential_stuffing_from_one_address_blocks_that_address(client, make_user, rules) -> None:
    rules(DETECT_CREDENTIAL_STUFFING="3/10m")
    user = make_user()
    ip = fresh_ip()
    # Successful logins never count, however many come from one address.
    assert {_login(client, user.username, ip, PASSWORD).status_code for _ in range(5)} == {200}
    before = _threats("credential_stuffing")
    # The same failing name twice is one username: stuffing is about many names.
    statuses = [_login(client, name, ip).status_code for name in ("ann", "ann", "ben", "cid")]
    assert statuses == [401, 401, 401, 401]
    assert _login(client, user.username, ip, PASSWORD).status_code == 429
    assert _login(client, user.username, fresh_ip(), PASSWORD).status_code == 200  # another address is not
    assert _threats("credential_stuffing") == before + 1
    (threat,) = AuditEntry.objects.filter(event="threat.credential_stuffing", client_address=ip)
    assert threat.detail["usernames"] == 3


def test_refresh_token_reuse_revokes_the_family_and_the_other_sessions(client, make_user, login) -> None:
    user = make_user()
    first = login(user)
    other_session = login(user)
    rotated = client.post("/api/v1/auth/token/refresh/", {"refresh": first["refresh"]}, content_type="application/json")
    assert rotated.status_code == 200
    before = _threats("refresh_reuse")
    reused = client.post("/api/v1/auth/token/refresh/", {"refresh": first["refresh"]}, content_type="application/json")
    assert_unauthorized(reused)
    for survivor in (rotated.json()["refresh"], other_session["refresh"]):
        answer = client.post("/api/v1/auth/token/refresh/", {"refresh": survivor}, content_type="application/json")
        assert_unauthorized(answer)
    assert not OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True).exists()
    assert _threats("refresh_reuse") >= before + 1
    threat = AuditEntry.objects.filter(event="threat.refresh_reuse", actor_id=str(user.pk)).earliest("id")
    assert threat.detail["revoked"] == 2  # the rotated-in token and the other session
    assert AuditEntry.objects.filter(event="auth.refresh_reuse", actor_id=str(user.pk), outcome="failure").exists()


def _token_signed_by_a_stranger(kid: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "iss": TEST_ISSUER,
        "aud": TEST_AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "sub": "7",
        "username": "mallory",
        "roles": ["user", "operator"],
        "token_type": "access",
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def test_a_token_signed_by_an_unknown_key_is_refused_and_raises_a_threat(client) -> None:
    before = _threats("unknown_key")
    kid = f"stranger-{uuid.uuid4().hex[:8]}"
    ip = fresh_ip()
    assert_unauthorized(client.get("/api/v1/auth/me/", REMOTE_ADDR=ip, **bearer(_token_signed_by_a_stranger(kid))))
    assert _threats("unknown_key") == before + 1
    assert AuditEntry.objects.get(event="token.unknown_key", client_address=ip).detail == {"kid": kid}
    assert AuditEntry.objects.get(event="threat.unknown_key", client_address=ip).outcome == "detected"


def test_attempts_over_the_login_budget_count_towards_brute_force(client, make_user, settings) -> None:
    settings.SERVICEKIT = {
        **settings.SERVICEKIT,
        "THROTTLE_RATES": {**settings.SERVICEKIT["THROTTLE_RATES"], "login.username": "2/min", "login.ip": "off"},
        "DETECT_BRUTE_FORCE": "4/15m",
    }
    user = make_user()
    first = [_login(client, user.username, fresh_ip()) for _ in range(4)]
    assert [r.status_code for r in first] == [401, 401, 429, 429]
    assert all(r.json()["type"].endswith("/throttled") for r in first[2:])  # the budget's answer
    blocked = _login(client, user.username, fresh_ip(), PASSWORD)
    assert blocked.status_code == 429 and blocked.json()["type"].endswith("/blocked")
    assert AuditEntry.objects.filter(event="threat.brute_force", actor_username=user.username.casefold()).count() == 1
