"""The security audit trail: one append-only ``AuditEntry`` per security event, also a log line and a metric.

A service (or servicekit itself) records an event where it happens::

    from servicekit import audit

    audit.record("auth.login", request=request, actor=username, outcome=audit.FAILURE)
    audit.record("poll.state_changed", request=request, actor=principal, outcome=audit.SUCCESS,
                 detail={"poll": str(poll.id), "from": "open", "to": "closed"})

Each entry carries the time, the service, the actor (a ``Principal``, a Django user, or a bare username),
the client address as trusted (``servicekit.throttling.client_ip``), the request id and trace id of the
work in progress, the method and path, the outcome and a small JSON ``detail``. The same facts go to
the ``audit`` logger (an ECS line with ``event.dataset = <service>.audit``) and to the Prometheus counter
``audit_events_total{service,event,outcome}``.

Recording never fails the request it describes: an error is logged and swallowed (observability degrades,
never crashes). Write it *outside* a transaction that is about to roll back, or the entry goes with it.

Entries are kept ``SERVICEKIT["AUDIT_RETENTION_DAYS"]`` days (env ``AUDIT_RETENTION_DAYS``, default 90);
the beat task ``servicekit.audit.purge`` deletes older ones. Operators read them in each service's admin.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.db import models, transaction
from django.utils import timezone
from opentelemetry.trace import get_current_span  # the API only; without the SDK no span is ever valid
from prometheus_client import Counter

from servicekit.conf import servicekit_settings
from servicekit.env import env
from servicekit.logging import current_request_id
from servicekit.throttling import client_ip

logger = logging.getLogger("audit")
_internal = logging.getLogger(__name__)

servicekit_settings.register_defaults({"AUDIT_RETENTION_DAYS": env.int("AUDIT_RETENTION_DAYS", default=90)})

AUDIT_EVENTS = Counter(
    "audit_events_total", "Security events written to the audit trail.", ["service", "event", "outcome"]
)

# Outcomes: what happened to the attempt the entry describes.
SUCCESS = "success"
FAILURE = "failure"  # wrong credentials, an invalid or reused token
DENIED = "denied"  # authenticated but not allowed (403)
THROTTLED = "throttled"  # refused for volume (429)
DETECTED = "detected"  # a detection rule fired (``threat.*``)

PURGE_TASK = "servicekit.audit.purge"


def _actor_fields(actor: Any, request: Any) -> tuple[str, str]:
    if actor is None and request is not None:
        # DRF's Request keeps the authenticated user in ``_user``; reading ``request.user`` could run
        # authentication again inside an error handler.
        actor = request.__dict__.get("_user") if hasattr(request, "_request") else getattr(request, "user", None)
        if actor is not None and not getattr(actor, "is_authenticated", False):
            actor = None
    if actor is None:
        return "", ""
    if isinstance(actor, str):
        return "", actor[:150]
    actor_id = getattr(actor, "id", None)
    if actor_id is None:
        actor_id = getattr(actor, "pk", None)
    username = getattr(actor, "username", None)
    if username is None and hasattr(actor, "get_username"):
        username = actor.get_username()
    return ("" if actor_id is None else str(actor_id))[:64], str(username or "")[:150]


def _trace_id() -> str:
    context = get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def _address(request: Any) -> str | None:
    if request is None:
        return None
    address = client_ip(request)
    try:
        from ipaddress import ip_address

        return str(ip_address(address))
    except ValueError:
        return None


def record(
    event: str,
    *,
    outcome: str,
    request: Any = None,
    actor: Any = None,
    detail: Mapping[str, Any] | None = None,
) -> Any:
    """Append one entry for ``event`` (``auth.login``, ``threat.brute_force``...); the entry, or None on error."""
    service = servicekit_settings.SERVICE_NAME
    try:
        actor_id, username = _actor_fields(actor, request)
        request_path = request.path[:500] if request is not None else ""
        method = request.method if request is not None else ""
        fields = {
            "service": service,
            "event": event,
            "outcome": outcome,
            "actor_id": actor_id,
            "actor_username": username,
            "client_address": _address(request),
            "request_id": current_request_id() or "",
            "trace_id": _trace_id(),
            "method": method or "",
            "path": request_path,
            "detail": dict(detail or {}),
        }
    except Exception:
        _internal.exception("could not describe an audit event", extra={"audit": {"event": event}})
        return None
    entry = None
    try:
        from servicekit.models import AuditEntry

        with transaction.atomic():  # a savepoint: a failed write never poisons the caller's transaction
            entry = AuditEntry.objects.create(**fields)
    except Exception:
        _internal.exception("could not write an audit entry", extra={"audit": {"event": event}})
    try:
        AUDIT_EVENTS.labels(service, event, outcome).inc()
        level = logging.WARNING if event.startswith("threat.") else logging.INFO
        logger.log(
            level,
            "audit %s %s",
            event,
            outcome,
            extra={
                "event": {
                    "kind": "alert" if event.startswith("threat.") else "event",
                    "action": event,
                    "outcome": "success" if outcome == SUCCESS else "failure",
                    "dataset": f"{service}.audit",
                },
                "audit": {"outcome": outcome, "detail": fields["detail"]},
                "client": {"ip": fields["client_address"]},
                "user": {"name": username or None, "id": actor_id or None},
                "url": {"path": request_path or None},
            },
        )
    except Exception:
        _internal.exception("could not log an audit event")
    return entry


def purge_expired(*, now: Any = None) -> int:
    """Delete entries older than ``AUDIT_RETENTION_DAYS``; the number deleted. The only delete there is."""
    from servicekit.models import AuditEntry

    cutoff = (now or timezone.now()) - timedelta(days=int(servicekit_settings.AUDIT_RETENTION_DAYS))
    # AuditQuerySet.delete refuses on purpose; retention is the one sanctioned removal.
    deleted, _ = models.QuerySet.delete(AuditEntry.objects.filter(at__lt=cutoff))
    return int(deleted)


@shared_task(name=PURGE_TASK, ignore_result=True)
def purge() -> int:
    """Beat task (hourly, ``servicekit-purge-audit``): apply the audit retention."""
    return purge_expired()


# --- Django signals: admin actions and role changes, in every service ----------------------------------

_ROLE_FIELDS = ("is_staff", "is_superuser", "is_active")


def _admin_action(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """Every change an operator makes in the admin (Django writes a ``LogEntry`` for each)."""
    if not created:
        return
    flags = {1: "add", 2: "change", 3: "delete"}
    record(
        "admin.action",
        actor=instance.user,
        outcome=SUCCESS,
        detail={
            "action": flags.get(instance.action_flag, str(instance.action_flag)),
            "model": str(instance.content_type) if instance.content_type_id else "",
            "object_id": str(instance.object_id or "")[:100],
            "object": str(instance.object_repr)[:200],
        },
    )


def _remember_roles(sender: Any, instance: Any, **kwargs: Any) -> None:
    if instance.pk is None:
        instance._audit_roles_before = None
        return
    before = sender._default_manager.filter(pk=instance.pk).values(*_ROLE_FIELDS).first()
    instance._audit_roles_before = before


def _role_changed(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    before = getattr(instance, "_audit_roles_before", None)
    if created or before is None:
        return
    after = {name: getattr(instance, name) for name in _ROLE_FIELDS}
    changes = {name: [before[name], after[name]] for name in _ROLE_FIELDS if before[name] != after[name]}
    if changes:
        record(
            "account.role_changed",
            outcome=SUCCESS,
            detail={"user_id": str(instance.pk), "username": instance.get_username(), "changes": changes},
        )


def connect_signals() -> None:
    """Called once by ``ServiceKitConfig.ready``: audit admin actions and changes of staff/superuser/active."""
    from django.conf import settings
    from django.db.models.signals import post_save, pre_save

    if "django.contrib.admin" in settings.INSTALLED_APPS:
        from django.contrib.admin.models import LogEntry

        post_save.connect(_admin_action, sender=LogEntry, dispatch_uid="servicekit.audit.admin_action")
    if "django.contrib.auth" in settings.INSTALLED_APPS:
        pre_save.connect(_remember_roles, sender=settings.AUTH_USER_MODEL, dispatch_uid="servicekit.audit.roles_pre")
        post_save.connect(_role_changed, sender=settings.AUTH_USER_MODEL, dispatch_uid="servicekit.audit.roles_post")
