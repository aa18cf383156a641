"""Ending a user's sessions reaches every service: logout everywhere, a password change, a demotion.

Through the gateway, against the running stack: an access token that worked on polls_service,
choice_service and vote_service is refused (401 problem+json) by all three soon after the action.
polls_service refuses it at once (it increments the session generation in the action's transaction);
the other two once ``user.sessions_revoked`` has reached them and each process's copy of the
revocations has been reloaded (``servicekit.sessions``: at most every 0.5 s). The figure printed is how
long that took; the deadline only stops a broken pipeline from hanging the suite.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.bdd.helpers import PASSWORD

pytestmark = pytest.mark.stack

DEADLINE = 10.0  # seconds; an idle pipeline takes well under one (printed)
NEW_PASSWORD = PASSWORD + " renewed"


def register_and_login(gateway: requests.Session) -> tuple[int, str, dict]:
    username = f"sessions-{uuid.uuid4().hex[:10]}"
    created = gateway.post("/api/v1/auth/register/", json={"username": username, "password": PASSWORD})
    assert created.status_code == 201, created.text
    return created.json()["id"], username, login(gateway, username)


def login(gateway: requests.Session, username: str, password: str = PASSWORD) -> dict:
    pair = gateway.post("/api/v1/auth/token/", json={"username": username, "password": password})
    assert pair.status_code == 200, pair.text
    return pair.json()


def probes(gateway: requests.Session, access: str) -> dict[str, requests.Response]:
    """One authenticated read per service, with ``access``."""
    headers = {"Authorization": f"Bearer {access}"}
    return {
        "polls": gateway.get("/api/v2/auth/me/", headers=headers),
        "choices": gateway.get(f"/api/v2/choices/?poll={uuid.uuid4()}", headers=headers),
        "votes": gateway.get("/api/v2/votes/", headers=headers),
    }


def assert_accepted_everywhere(gateway: requests.Session, access: str) -> None:
    answers = probes(gateway, access)
    assert {name: r.status_code for name, r in answers.items()} == {"polls": 200, "choices": 200, "votes": 200}


def seconds_until_refused_everywhere(gateway: requests.Session, access: str, since: float) -> float:
    deadline = since + DEADLINE
    while True:
        answers = probes(gateway, access)
        if all(r.status_code == 401 for r in answers.values()):
            for answer in answers.values():
                assert answer.headers["Content-Type"].startswith("application/problem+json")
                assert "revoked" in answer.json()["detail"]
            return time.monotonic() - since
        statuses = {name: r.status_code for name, r in answers.items()}
        assert set(statuses.values()) <= {200, 401}, statuses
        assert time.monotonic() < deadline, f"still accepted {DEADLINE} s after the revocation: {statuses}"
        time.sleep(0.05)


def test_logout_everywhere_is_refused_by_every_service(gateway) -> None:
    _, username, phone = register_and_login(gateway)
    laptop = login(gateway, username)
    for session in (phone, laptop):
        assert_accepted_everywhere(gateway, session["access"])
    started = time.monotonic()
    done = gateway.post("/api/v2/auth/logout/all/", headers={"Authorization": f"Bearer {laptop['access']}"})
    assert done.status_code == 204, done.text
    assert probes(gateway, phone["access"])["polls"].status_code == 401  # the issuer: at once
    took = seconds_until_refused_everywhere(gateway, phone["access"], started)
    assert seconds_until_refused_everywhere(gateway, laptop["access"], started)
    print(f"\n=== logout everywhere: refused by all three services {took:.2f} s after the request ===")
    assert gateway.post("/api/v1/auth/token/refresh/", json={"refresh": phone["refresh"]}).status_code == 401
    assert_accepted_everywhere(gateway, login(gateway, username)["access"])  # a new session works everywhere


def test_a_password_change_is_refused_by_every_service(gateway) -> None:
    _, username, other = register_and_login(gateway)
    mine = login(gateway, username)
    assert_accepted_everywhere(gateway, other["access"])
    started = time.monotonic()
    changed = gateway.post(
        "/api/v2/auth/password/",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"Authorization": f"Bearer {mine['access']}"},
    )
    assert changed.status_code == 200, changed.text
    took = seconds_until_refused_everywhere(gateway, other["access"], started)
    print(f"\n=== password change: refused by all three services {took:.2f} s after the request ===")
    assert_accepted_everywhere(gateway, changed.json()["access"])  # the answer's new pair
    assert gateway.post("/api/v1/auth/token/", json={"username": username, "password": PASSWORD}).status_code == 401
    login(gateway, username, NEW_PASSWORD)


def set_staff(stack, user_id: int, staff: bool) -> None:
    """Tick or untick "staff status" as an operator at polls_service's shell does (the admin saves the same way)."""
    code = (
        "from django.contrib.auth import get_user_model; "
        f"u = get_user_model().objects.get(pk={int(user_id)}); u.is_staff = {bool(staff)}; u.save()"
    )
    stack.manage("polls", "shell", "-c", code)


def test_a_demotion_is_refused_by_every_service(stack, gateway) -> None:
    user_id, username, _ = register_and_login(gateway)
    set_staff(stack, user_id, True)
    promoted = login(gateway, username)
    assert gateway.get("/api/v2/auth/me/", headers={"Authorization": f"Bearer {promoted['access']}"}).json()[
        "roles"
    ] == ["operator", "user"]
    assert_accepted_everywhere(gateway, promoted["access"])
    started = time.monotonic()
    set_staff(stack, user_id, False)
    took = seconds_until_refused_everywhere(gateway, promoted["access"], started)
    print(f"\n=== demotion: the operator token refused by all three services {took:.2f} s after ===")
    again = login(gateway, username)
    me = gateway.get("/api/v2/auth/me/", headers={"Authorization": f"Bearer {again['access']}"})
    assert me.json()["roles"] == ["user"]
