"""Threat detection through the gateway: brute force on one account and refresh-token reuse, end to end.

Each attack is provoked as an attacker would (through the gateway, against the running stack), its
response checked (a 429 problem+json with Retry-After; a revoked token family), and its evidence read
the way an operator reads it: the polls admin's audit trail (logged in as the stack's operator) and
polls_service's ``/metrics``.

The brute-force threshold is the test stack's (development) default, ``DETECT_BRUTE_FORCE=40/15m``,
above the per-username login budget (``LOGIN_RATE_PER_USERNAME=30/min``): the first 30 guesses reach the
password check (401), the next ones are refused by the budget (429) and count as failed attempts too,
until the rule blocks the account. The attack uses an account of its own, so no other test is blocked.
"""

from __future__ import annotations

import uuid

import requests
from prometheus_client.parser import text_string_to_metric_families

PASSWORD = "correct horse battery staple"
BRUTE_FORCE_ATTEMPTS = 40  # servicekit.detection's development default for DETECT_BRUTE_FORCE
LOGIN_BUDGET = 30  # LOGIN_RATE_PER_USERNAME's development default (per minute)
AUDIT_ADMIN = "/admin/polls/servicekit/auditentry/"


def _register(gateway: requests.Session) -> str:
    username = f"audit-{uuid.uuid4().hex[:10]}"
    response = gateway.post("/api/v1/auth/register/", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return username


def _threats(stack, kind: str) -> float:
    text = requests.get(f"{stack.service_url('polls')}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "security_threats_detected_total" and sample.labels.get("kind") == kind
    )


def _audit_rows(stack, admin: requests.Session, *, event: str, search: str) -> str:
    response = admin.get(f"{stack.gateway_url}{AUDIT_ADMIN}", params={"event": event, "q": search}, timeout=15)
    assert response.status_code == 200, response.text[:300]
    return response.text


def test_brute_force_on_one_account_is_blocked_audited_and_counted(stack, gateway, operator_admin) -> None:
    username = _register(gateway)
    before = _threats(stack, "brute_force")
    guesses = [
        gateway.post("/api/v1/auth/token/", json={"username": username, "password": f"guess {n}"})
        for n in range(BRUTE_FORCE_ATTEMPTS)
    ]
    statuses = [guess.status_code for guess in guesses]
    assert statuses == [401] * LOGIN_BUDGET + [429] * (BRUTE_FORCE_ATTEMPTS - LOGIN_BUDGET), statuses
    assert all(guess.json()["type"].endswith("/throttled") for guess in guesses[LOGIN_BUDGET:])  # the budget
    # The right password no longer helps: the rule blocked the account for a cool-down (beyond the budget's minute).
    blocked = gateway.post("/api/v1/auth/token/", json={"username": username, "password": PASSWORD})
    assert blocked.status_code == 429, blocked.text
    assert blocked.headers["Content-Type"].startswith("application/problem+json")
    assert blocked.json()["type"].endswith("/blocked") and blocked.json()["status"] == 429
    assert int(blocked.headers["Retry-After"]) > 60
    # Another account logs in as usual.
    bystander = _register(gateway)
    assert gateway.post("/api/v1/auth/token/", json={"username": bystander, "password": PASSWORD}).status_code == 200

    assert _threats(stack, "brute_force") >= before + 1
    page = _audit_rows(stack, operator_admin, event="threat.brute_force", search=username.casefold())
    assert username.casefold() in page and "threat.brute_force" in page
    page = _audit_rows(stack, operator_admin, event="auth.login", search=username)
    assert page.count(username) >= LOGIN_BUDGET  # every failed password check has its entry


def test_refresh_token_reuse_revokes_the_family_audited_and_counted(stack, gateway, operator_admin) -> None:
    username = _register(gateway)
    pair = gateway.post("/api/v1/auth/token/", json={"username": username, "password": PASSWORD}).json()
    rotated = gateway.post("/api/v1/auth/token/refresh/", json={"refresh": pair["refresh"]})
    assert rotated.status_code == 200
    before = _threats(stack, "refresh_reuse")

    # A thief replays the old token: refused, and the rotated-in token dies with it.
    replayed = gateway.post("/api/v1/auth/token/refresh/", json={"refresh": pair["refresh"]})
    assert replayed.status_code == 401 and replayed.headers["Content-Type"].startswith("application/problem+json")
    successor = gateway.post("/api/v1/auth/token/refresh/", json={"refresh": rotated.json()["refresh"]})
    assert successor.status_code == 401

    assert _threats(stack, "refresh_reuse") >= before + 1
    page = _audit_rows(stack, operator_admin, event="threat.refresh_reuse", search=username)
    assert username in page and "threat.refresh_reuse" in page
