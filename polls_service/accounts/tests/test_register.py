"""Registration: validation, case-insensitive unique usernames (in the database too), no mass assignment."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from accounts.tests.conftest import PASSWORD, fresh_username

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_register_creates_a_regular_user(api, version) -> None:
    name = fresh_username()
    response = api.post(f"/api/{version}/auth/register/", {"username": name, "password": PASSWORD}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["username"] == name and body["roles"] == ["user"]
    user = get_user_model().objects.get(pk=body["id"])
    assert user.check_password(PASSWORD) and not user.is_staff and not user.is_superuser
    if version == "v3":
        assert body["_links"]["token"] == {"href": "/api/v3/auth/token/", "method": "POST"}


@pytest.mark.parametrize(
    "extra", [{"is_staff": True}, {"roles": ["user", "operator"]}, {"is_superuser": True}, {"id": 1}]
)
def test_privileged_fields_in_the_body_are_rejected(api, extra) -> None:
    name = fresh_username()
    response = api.post("/api/v1/auth/register/", {"username": name, "password": PASSWORD, **extra}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert set(response.json()["errors"]) == set(extra)
    assert not get_user_model().objects.filter(username=name).exists()


def test_username_is_unique_ignoring_case(api) -> None:
    name = fresh_username("Carol")
    assert (
        api.post("/api/v1/auth/register/", {"username": name, "password": PASSWORD}, format="json").status_code == 201
    )
    again = api.post("/api/v1/auth/register/", {"username": name.upper(), "password": PASSWORD}, format="json")
    assert again.status_code == 409
    assert again.json()["errors"] == {"username": ["A user with that username already exists."]}
    assert get_user_model().objects.filter(username__iexact=name).count() == 1


def test_database_enforces_case_insensitive_uniqueness() -> None:
    User = get_user_model()
    name = fresh_username("Dave")
    User.objects.create(username=name)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username=name.swapcase())


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "weakling", "password": "123"}, "password"),
        ({"username": "weakling2", "password": "password"}, "password"),
        ({"username": "samepass1", "password": "samepass1"}, "password"),
        ({"username": "bad name!", "password": PASSWORD}, "username"),
        ({"username": "", "password": PASSWORD}, "username"),
        ({"username": "x" * 151, "password": PASSWORD}, "username"),
        ({"username": "nul\x00byte", "password": PASSWORD}, "username"),
        ({"password": PASSWORD}, "username"),
        ({"username": "nopass"}, "password"),
        ({"username": "bademail", "password": PASSWORD, "email": "not-an-email"}, "email"),
    ],
)
def test_invalid_registrations_are_400_problems(api, payload, field) -> None:
    response = api.post("/api/v1/auth/register/", payload, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["errors"]
    if "\x00" not in payload.get("username", ""):
        assert not get_user_model().objects.filter(username=payload.get("username", "")).exists()


def test_non_object_body_is_400(api) -> None:
    response = api.post("/api/v1/auth/register/", ["username"], format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
