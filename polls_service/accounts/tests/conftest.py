"""Fixtures of the accounts tests: an API client from its own address, users, token pairs."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

PASSWORD = "correct horse battery staple"
_counter = itertools.count()


def fresh_ip() -> str:
    """A documentation-range address no other test (or run) shares, so throttle budgets do not leak."""
    return f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"


def fresh_username(prefix: str = "user") -> str:
    return f"{prefix}{next(_counter)}x{random.randrange(10**9)}"


@pytest.fixture
def api() -> APIClient:
    return APIClient(REMOTE_ADDR=fresh_ip())


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    def make(username: str | None = None, *, staff: bool = False, active: bool = True) -> Any:
        user = get_user_model()(username=username or fresh_username(), is_staff=staff, is_active=active)
        user.set_password(PASSWORD)
        user.save()
        return user

    return make


@pytest.fixture
def user(make_user: Callable[..., Any]) -> Any:
    return make_user()


@pytest.fixture
def login(api: APIClient) -> Callable[[Any], dict[str, Any]]:
    def do(user: Any, version: str = "v1") -> dict[str, Any]:
        response = api.post(
            f"/api/{version}/auth/token/", {"username": user.username, "password": PASSWORD}, format="json"
        )
        assert response.status_code == 200, response.content
        return response.json()

    return do


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # PBKDF2's deliberate cost is not under test here; MD5 keeps a suite full of logins quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
