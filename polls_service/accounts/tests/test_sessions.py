"""Ending sessions: logout everywhere, a password change, a demotion or deactivation, a reused refresh token.

Each one blacklists the user's refresh tokens, moves its session generation on (tokens carry ``sgen``)
and emits ``user.sessions_revoked`` for the other services, in one transaction; this service refuses
the user's older access tokens at once. (That choice_service and vote_service do too is proved through
the gateway in tests/e2e/test_sessions.py.)
"""

from __future__ import annotations

import jwt
import pytest

from accounts.tests.conftest import PASSWORD
from servicekit.auth import AUTH_FAILURES
from servicekit.events.models import OutboxEvent
from servicekit.testing import assert_unauthorized, bearer

pytestmark = pytest.mark.django_db

NEW_PASSWORD = PASSWORD + " and a new one"


def revocations(user) -> list[dict]:
    return [
        row.envelope
        for row in OutboxEvent.objects.filter(event_type="user.sessions_revoked", aggregate_id=str(user.pk)).order_by(
            "id"
        )
    ]


def generation_of(token: str) -> int:
    return jwt.decode(token, options={"verify_signature": False})["sgen"]


def me(api, access: str) -> int:
    return api.get("/api/v1/auth/me/", **bearer(access)).status_code


def refresh(api, token: str):
    return api.post("/api/v1/auth/token/refresh/", {"refresh": token}, format="json")


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_logout_everywhere_ends_every_session(user, login, api, version) -> None:
    phone, laptop = login(user), login(user)
    assert generation_of(phone["access"]) == 0
    response = api.post(f"/api/{version}/auth/logout/all/", **bearer(laptop["access"]))
    assert response.status_code == 204, response.content
    for session in (phone, laptop):
        refused = api.get("/api/v1/auth/me/", **bearer(session["access"]))
        assert_unauthorized(refused)
        assert "revoked" in refused.json()["detail"]
        assert_unauthorized(refresh(api, session["refresh"]))
    [event] = revocations(user)
    assert event["data"] == {"user_id": user.pk, "generation": 1, "reason": "logout_everywhere"}
    assert event["version"] == 1
    # A new login is a new session: its tokens carry the new generation and work.
    again = login(user)
    assert generation_of(again["access"]) == generation_of(again["refresh"]) == 1
    assert me(api, again["access"]) == 200
    assert refresh(api, again["refresh"]).status_code == 200


def test_logout_everywhere_needs_an_access_token(api, user, login) -> None:
    assert_unauthorized(api.post("/api/v1/auth/logout/all/"))
    assert_unauthorized(api.post("/api/v1/auth/logout/all/", **bearer(login(user)["refresh"])))
    assert revocations(user) == []


def test_a_refresh_token_of_a_revoked_session_is_refused_without_calling_it_reuse(user, login, api) -> None:
    pair = login(user)
    api.post("/api/v1/auth/logout/all/", **bearer(pair["access"]))
    reused = AUTH_FAILURES.labels("polls", "refresh_reused")._value.get()
    assert_unauthorized(refresh(api, pair["refresh"]))
    assert AUTH_FAILURES.labels("polls", "refresh_reused")._value.get() == reused
    assert len(revocations(user)) == 1  # no second revocation for a client that was simply logged out


def test_a_password_change_ends_the_other_sessions_and_answers_with_a_new_pair(user, login, api) -> None:
    other, mine = login(user), login(user)
    response = api.post(
        "/api/v1/auth/password/",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
        **bearer(mine["access"]),
    )
    assert response.status_code == 200, response.content
    fresh = response.json()
    assert me(api, fresh["access"]) == 200
    for session in (other, mine):
        assert me(api, session["access"]) == 401
        assert_unauthorized(refresh(api, session["refresh"]))
    assert [e["data"]["reason"] for e in revocations(user)] == ["password_changed"]
    assert (
        api.post("/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}, format="json").status_code
        == 401
    )
    new_login = api.post("/api/v1/auth/token/", {"username": user.username, "password": NEW_PASSWORD}, format="json")
    assert new_login.status_code == 200


def test_a_password_change_needs_the_current_password_and_a_strong_new_one(user, login, api) -> None:
    pair = login(user)
    wrong = api.post(
        "/api/v1/auth/password/",
        {"current_password": "not it at all", "new_password": NEW_PASSWORD},
        format="json",
        **bearer(pair["access"]),
    )
    assert_unauthorized(wrong)
    weak = api.post(
        "/api/v1/auth/password/",
        {"current_password": PASSWORD, "new_password": "123"},
        format="json",
        **bearer(pair["access"]),
    )
    assert weak.status_code == 400 and "password" in weak.json()["errors"]
    unknown = api.post(
        "/api/v1/auth/password/",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "is_staff": True},
        format="json",
        **bearer(pair["access"]),
    )
    assert unknown.status_code == 400 and "is_staff" in unknown.json()["errors"]
    assert me(api, pair["access"]) == 200  # nothing changed
    assert revocations(user) == []


def test_a_demotion_or_deactivation_ends_every_session(make_user, login, api) -> None:
    operator = make_user(staff=True)
    pair = login(operator)
    assert jwt.decode(pair["access"], options={"verify_signature": False})["roles"] == ["user", "operator"]
    operator.is_staff = False
    operator.save()
    assert me(api, pair["access"]) == 401
    assert_unauthorized(refresh(api, pair["refresh"]))
    user = make_user()
    other = login(user)
    user.is_active = False
    user.save()
    assert me(api, other["access"]) == 401
    assert [e["data"]["reason"] for e in revocations(operator)] == ["demoted"]
    assert [e["data"]["reason"] for e in revocations(user)] == ["deactivated"]


def test_a_promotion_or_another_change_keeps_the_sessions(user, login, api) -> None:
    pair = login(user)
    user.email = "new@example.org"
    user.save()
    user.is_staff = True
    user.save()
    assert me(api, pair["access"]) == 200
    assert revocations(user) == []


def test_a_reused_refresh_token_kills_the_access_tokens_of_the_family_too(user, login, api) -> None:
    pair = login(user)
    rotated = refresh(api, pair["refresh"]).json()
    assert me(api, rotated["access"]) == 200
    assert_unauthorized(refresh(api, pair["refresh"]))  # the replay
    assert me(api, rotated["access"]) == 401
    assert [e["data"]["reason"] for e in revocations(user)] == ["refresh_reuse"]
