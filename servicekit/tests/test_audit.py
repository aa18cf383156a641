"""The audit trail: an entry per event with its context, append-only, purged by retention, logged and counted."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.utils import timezone
from prometheus_client import REGISTRY

from servicekit import audit
from servicekit.logging import request_id_var
from servicekit.models import AppendOnlyError, AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)


def _count(event: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("audit_events_total", {"service": "kit", "event": event, "outcome": outcome}) or 0


def _request(**meta: str):
    return RequestFactory().post("/api/v1/things/", REMOTE_ADDR="127.0.0.1", **meta)


def test_record_writes_the_context_of_the_request() -> None:
    token = request_id_var.set("req-123")
    try:
        entry = audit.record(
            "auth.login",
            request=_request(HTTP_X_FORWARDED_FOR="203.0.113.9"),
            actor="Alice",
            outcome=audit.FAILURE,
            detail={"why": "wrong password"},
        )
    finally:
        request_id_var.reset(token)
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.service, stored.event, stored.outcome) == ("kit", "auth.login", "failure")
    assert stored.actor_username == "Alice" and stored.actor_id == ""
    # The gateway (a trusted proxy) forwarded for the client: the client's address is recorded, not the proxy's.
    assert stored.client_address == "203.0.113.9"
    assert (stored.request_id, stored.method, stored.path) == ("req-123", "POST", "/api/v1/things/")
    assert stored.detail == {"why": "wrong password"}
    assert stored.at <= timezone.now()


def test_a_spoofed_forwarded_for_from_an_untrusted_client_is_not_believed() -> None:
    entry = audit.record(
        "auth.login",
        request=RequestFactory().post("/x/", REMOTE_ADDR="198.51.100.4", HTTP_X_FORWARDED_FOR="10.1.1.1"),
        outcome=audit.FAILURE,
    )
    assert AuditEntry.objects.get(pk=entry.pk).client_address == "198.51.100.4"


def test_actor_is_taken_from_a_user_object() -> None:
    user = get_user_model().objects.create(username="bob-audit")
    entry = audit.record("auth.logout", actor=user, outcome=audit.SUCCESS)
    assert (entry.actor_id, entry.actor_username) == (str(user.pk), "bob-audit")


def test_entries_are_append_only() -> None:
    entry = audit.record("auth.register", outcome=audit.SUCCESS)
    entry.outcome = "failure"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(outcome="failure")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.get(pk=entry.pk).outcome == "success"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_the_database_refuses_an_update_behind_the_orms_back() -> None:
    entry = audit.record("auth.register", outcome=audit.SUCCESS)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE servicekit_audit_entry SET outcome = 'failure' WHERE id = %s", [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).outcome == "success"


def test_retention_purges_only_entries_older_than_the_setting(settings) -> None:
    settings.SERVICEKIT = {**settings.SERVICEKIT, "AUDIT_RETENTION_DAYS": 30}
    now = timezone.now()
    old = AuditEntry.objects.create(service="kit", event="auth.login", outcome="success", at=now - timedelta(days=31))
    recent = AuditEntry.objects.create(
        service="kit", event="auth.login", outcome="success", at=now - timedelta(days=29)
    )
    assert audit.purge.apply().get() == 1  # the beat task
    assert not AuditEntry.objects.filter(pk=old.pk).exists()
    assert AuditEntry.objects.filter(pk=recent.pk).exists()


def test_the_purge_is_on_the_beat_schedule(settings) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["servicekit-purge-audit"]
    assert entry["task"] == audit.PURGE_TASK and entry["schedule"] <= 86400


def test_each_entry_is_an_audit_log_line_and_a_metric(caplog) -> None:
    before = _count("threat.brute_force", "detected")
    with caplog.at_level(logging.INFO, logger="audit"):
        audit.record("threat.brute_force", request=_request(), actor="mallory", outcome=audit.DETECTED)
    assert _count("threat.brute_force", "detected") == before + 1
    (line,) = [r for r in caplog.records if r.name == "audit"]
    assert line.levelno == logging.WARNING  # a threat is worth a look
    assert line.event["action"] == "threat.brute_force" and line.event["dataset"] == "kit.audit"
    assert line.user["name"] == "mallory" and line.client["ip"] == "127.0.0.1"


def test_a_failing_write_never_fails_the_caller(monkeypatch, caplog) -> None:
    def broken(**kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(AuditEntry.objects, "create", broken)
    before = _count("auth.refresh", "success")
    assert audit.record("auth.refresh", outcome=audit.SUCCESS) is None
    assert _count("auth.refresh", "success") == before + 1  # the log line and metric still happen
    assert "could not write an audit entry" in caplog.text


def test_admin_actions_are_audited() -> None:
    operator = get_user_model().objects.create(username="op-audit", is_staff=True, is_superuser=True)
    LogEntry.objects.log_actions(
        user_id=operator.pk,
        queryset=[operator],
        action_flag=ADDITION,
        change_message="added",
        single_object=True,
    )
    entry = AuditEntry.objects.filter(event="admin.action").latest("id")
    assert entry.actor_username == "op-audit"
    assert entry.detail["action"] == "add" and entry.detail["object"] == "op-audit"
    assert ContentType.objects.get_for_model(operator).model in entry.detail["model"]


def test_role_changes_are_audited() -> None:
    user = get_user_model().objects.create(username="carol-audit")
    assert not AuditEntry.objects.filter(event="account.role_changed").exists()  # creating is not a change
    user.is_staff = True
    user.save()
    entry = AuditEntry.objects.get(event="account.role_changed")
    assert entry.detail["username"] == "carol-audit" and entry.detail["changes"] == {"is_staff": [False, True]}
    user.first_name = "Carol"
    user.save()  # no role moved: no entry
    assert AuditEntry.objects.filter(event="account.role_changed").count() == 1


def test_the_admin_is_read_only_and_filterable() -> None:
    model_admin = admin.site._registry[AuditEntry]
    request = RequestFactory().get("/admin/")
    request.user = get_user_model()(is_staff=True, is_superuser=True)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.has_view_permission(request)
    assert {"event", "outcome", "service"} <= {f if isinstance(f, str) else f[0] for f in model_admin.list_filter}
    assert "actor_username" in model_admin.search_fields and "=client_address" in model_admin.search_fields
