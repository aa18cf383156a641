"""Token life cycle: issue, claims, me, refresh rotation (atomic), logout, operator role."""

from __future__ import annotations

import threading
import time

import jwt
import pytest
from django.db import connection
from django.test import Client
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.tests.conftest import PASSWORD, fresh_ip
from servicekit import jwks
from servicekit.testing import assert_unauthorized, bearer, test_private_key

pytestmark = pytest.mark.django_db


def test_token_carries_the_contract_claims(user, login) -> None:
    pair = login(user)
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 300
    header = jwt.get_unverified_header(pair["access"])
    assert header["alg"] == "RS256"
    assert header["kid"] == jwks.thumbprint(test_private_key().public_key())
    claims = jwt.decode(pair["access"], options={"verify_signature": False})
    assert claims["sub"] == str(user.pk) and isinstance(claims["sub"], str)
    assert claims["username"] == user.username and claims["roles"] == ["user"]
    assert claims["iss"] == "polls-platform" and claims["aud"] == "polls-platform-api"
    assert claims["token_type"] == "access" and claims["jti"]
    assert claims["exp"] - claims["iat"] == 300
    refresh = jwt.decode(pair["refresh"], options={"verify_signature": False})
    assert refresh["token_type"] == "refresh" and refresh["exp"] - refresh["iat"] == 86400
    stored = OutstandingToken.objects.get(jti=refresh["jti"])
    assert stored.user_id == user.pk and stored.token == ""


def test_login_is_case_insensitive(api, user) -> None:
    response = api.post("/api/v1/auth/token/", {"username": user.username.upper(), "password": PASSWORD}, format="json")
    assert response.status_code == 200
    assert jwt.decode(response.json()["access"], options={"verify_signature": False})["sub"] == str(user.pk)


@pytest.mark.parametrize(
    "credentials",
    [{"username": "nobody-here", "password": PASSWORD}, {"username": None, "password": "wrong password!"}],
)
def test_bad_credentials_are_401_problems(api, user, credentials) -> None:
    if credentials["username"] is None:
        credentials = {**credentials, "username": user.username}
    response = api.post("/api/v1/auth/token/", credentials, format="json")
    assert_unauthorized(response)
    assert response.json()["type"].endswith("/invalid-credentials")


def test_inactive_user_cannot_log_in(api, make_user) -> None:
    user = make_user(active=False)
    response = api.post("/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}, format="json")
    assert_unauthorized(response)


def test_a_stale_bearer_header_does_not_block_login(api, user) -> None:
    response = api.post(
        "/api/v1/auth/token/",
        {"username": user.username, "password": PASSWORD},
        format="json",
        HTTP_AUTHORIZATION="Bearer garbage",
    )
    assert response.status_code == 200


def test_staff_users_get_the_operator_role(make_user, login, api) -> None:
    pair = login(make_user(staff=True))
    me = api.get("/api/v1/auth/me/", **bearer(pair["access"]))
    assert me.status_code == 200
    assert me.json()["roles"] == ["operator", "user"]


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_me_describes_the_caller(user, login, api, version) -> None:
    pair = login(user, version)
    response = api.get(f"/api/{version}/auth/me/", **bearer(pair["access"]))
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["username"], body["roles"]) == (user.pk, user.username, ["user"])
    if version == "v3":
        assert response["Content-Type"].startswith("application/hal+json")
        assert body["_links"]["self"] == {"href": "/api/v3/auth/me/"}


def test_me_without_a_token_is_401(api) -> None:
    assert_unauthorized(api.get("/api/v1/auth/me/"))


def test_refresh_rotates_and_the_used_token_fails(user, login, api) -> None:
    pair = login(user)
    rotated = api.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert rotated.status_code == 200, rotated.content
    new = rotated.json()
    assert new["refresh"] != pair["refresh"] and new["access"] != pair["access"]
    assert api.get("/api/v1/auth/me/", **bearer(new["access"])).status_code == 200
    reused = api.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert_unauthorized(reused)
    # Reuse revokes the whole family: the rotated-in successor dies too (servicekit.detection refresh_reuse).
    assert_unauthorized(api.post("/api/v1/auth/token/refresh/", {"refresh": new["refresh"]}, format="json"))


def test_refresh_rejects_access_tokens_and_garbage(user, login, api) -> None:
    pair = login(user)
    for candidate in (pair["access"], "garbage", pair["refresh"][:-4] + "AAAA"):
        assert_unauthorized(api.post("/api/v1/auth/token/refresh/", {"refresh": candidate}, format="json"))


def test_refresh_of_a_deactivated_user_fails(user, login, api) -> None:
    pair = login(user)
    user.is_active = False
    user.save()
    assert_unauthorized(api.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json"))


def test_refresh_picks_up_role_changes(user, login, api) -> None:
    pair = login(user)
    user.is_staff = True
    user.save()
    rotated = api.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json").json()
    assert jwt.decode(rotated["access"], options={"verify_signature": False})["roles"] == ["user", "operator"]


def test_logout_revokes_the_refresh_token(user, login, api) -> None:
    pair = login(user)
    response = api.post("/api/v1/auth/logout/", {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 204
    assert BlacklistedToken.objects.filter(
        token__jti=jwt.decode(pair["refresh"], options={"verify_signature": False})["jti"]
    ).exists()
    assert_unauthorized(api.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json"))
    # Logging out twice is harmless; a forged token is not.
    assert api.post("/api/v1/auth/logout/", {"refresh": pair["refresh"]}, format="json").status_code == 204
    assert_unauthorized(api.post("/api/v1/auth/logout/", {"refresh": pair["access"]}, format="json"))


def test_logout_needs_a_body(api) -> None:
    response = api.post("/api/v1/auth/logout/", {}, format="json")
    assert response.status_code == 400 and "refresh" in response.json()["errors"]


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_refreshes_yield_exactly_one_success(user, login) -> None:
    refresh = login(user)["refresh"]
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt() -> None:
        client = Client(REMOTE_ADDR=fresh_ip())
        try:
            barrier.wait()
            response = client.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, content_type="application/json")
            with lock:
                statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [401] * 19
    assert OutstandingToken.objects.filter(user=user).count() == 2  # the original and its one successor


def test_access_token_expiry_is_enforced(user, api, settings) -> None:
    from servicekit.testing import make_access_token

    expired = make_access_token(user.pk, user.username, iat=int(time.time()) - 600, exp=int(time.time()) - 31)
    assert_unauthorized(api.get("/api/v1/auth/me/", **bearer(expired)))
    within_leeway = make_access_token(user.pk, user.username, iat=int(time.time()) - 600, exp=int(time.time()) - 5)
    assert api.get("/api/v1/auth/me/", **bearer(within_leeway)).status_code == 200


def test_a_verified_token_is_refused_once_it_expires(user, api, settings) -> None:
    from servicekit.testing import make_access_token

    settings.SERVICEKIT = {**settings.SERVICEKIT, "JWT_LEEWAY_SECONDS": 0}
    expires = int(time.time()) + 2
    token = make_access_token(user.pk, user.username, exp=expires)
    assert api.get("/api/v1/auth/me/", **bearer(token)).status_code == 200
    assert api.get("/api/v1/auth/me/", **bearer(token)).status_code == 200  # served from the verified cache
    time.sleep(max(0.0, expires - time.time()) + 0.2)
    assert_unauthorized(api.get("/api/v1/auth/me/", **bearer(token)))


def test_expired_refresh_records_are_flushed(user, login) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from accounts.tasks import flush_expired_tokens

    pair = login(user)
    jti = jwt.decode(pair["refresh"], options={"verify_signature": False})["jti"]
    expired = OutstandingToken.objects.create(
        user=user, jti="expired-" + jti, token="", expires_at=timezone.now() - timedelta(seconds=1)
    )
    BlacklistedToken.objects.create(token=expired)
    assert flush_expired_tokens() == 2  # the record and its blacklist entry
    assert not OutstandingToken.objects.filter(pk=expired.pk).exists()
    assert OutstandingToken.objects.filter(jti=jti).exists()


def test_credential_answers_are_never_replayed_by_idempotency_key(user, api) -> None:
    import uuid

    same_key, rotate_key = uuid.uuid4().hex, uuid.uuid4().hex
    body = {"username": user.username, "password": PASSWORD}
    first = api.post("/api/v2/auth/token/", body, format="json", HTTP_IDEMPOTENCY_KEY=same_key)
    second = api.post("/api/v2/auth/token/", body, format="json", HTTP_IDEMPOTENCY_KEY=same_key)
    assert first.status_code == second.status_code == 200
    assert first.json()["refresh"] != second.json()["refresh"]
    assert "Idempotent-Replayed" not in second

    refresh = {"refresh": first.json()["refresh"]}
    rotated = api.post("/api/v2/auth/token/refresh/", refresh, format="json", HTTP_IDEMPOTENCY_KEY=rotate_key)
    assert rotated.status_code == 200
    replay = api.post("/api/v2/auth/token/refresh/", refresh, format="json", HTTP_IDEMPOTENCY_KEY=rotate_key)
    assert_unauthorized(replay)  # a used refresh token stays used, whatever the header says
