"""``manage.py ensure_operator``: creates, updates and never duplicates the operator; tokens say operator."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def _run(**options) -> str:
    out = io.StringIO()
    call_command("ensure_operator", stdout=out, **options)
    return out.getvalue()


def test_creates_then_leaves_alone_then_updates(monkeypatch) -> None:
    monkeypatch.setenv("OPERATOR_USERNAME", "ops-lead")
    monkeypatch.setenv("OPERATOR_PASSWORD", "first password 123")
    assert "created" in _run()
    user = get_user_model().objects.get(username="ops-lead")
    assert user.is_staff and user.is_superuser and user.check_password("first password 123")
    assert "unchanged" in _run()
    monkeypatch.setenv("OPERATOR_PASSWORD", "second password 456")
    user.is_staff = False
    user.save()
    assert "updated" in _run()
    user.refresh_from_db()
    assert user.is_staff and user.check_password("second password 456")
    assert get_user_model().objects.filter(username__iexact="ops-lead").count() == 1


def test_dev_defaults(monkeypatch) -> None:
    monkeypatch.delenv("OPERATOR_USERNAME", raising=False)
    monkeypatch.delenv("OPERATOR_PASSWORD", raising=False)
    _run()
    assert get_user_model().objects.get(username="operator").check_password("operator-dev-password")


def test_production_refuses_the_dev_password(monkeypatch) -> None:
    monkeypatch.setenv("DJANGO_ENV", "production")
    monkeypatch.delenv("OPERATOR_PASSWORD", raising=False)
    with pytest.raises(CommandError):
        _run()
    with pytest.raises(CommandError):
        _run(password="short")
    assert not get_user_model().objects.filter(username="operator").exists()


def test_operator_logs_in_with_the_operator_role(client, monkeypatch) -> None:
    monkeypatch.setenv("OPERATOR_USERNAME", "root-op")
    monkeypatch.setenv("OPERATOR_PASSWORD", "operator pass 789")
    _run()
    response = client.post(
        "/api/v1/auth/token/",
        {"username": "root-op", "password": "operator pass 789"},
        content_type="application/json",
        REMOTE_ADDR="198.18.251.1",
    )
    me = client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert me.json()["roles"] == ["operator", "user"]
