"""Models of the ``servicekit`` app, migrated into every service's own database.

The event tables live in ``servicekit.events.models``; they are imported here so Django finds them.
``AuditEntry`` is the append-only security audit log (written by ``servicekit.audit.record``);
``SessionRevocation`` the per-user session generation every service checks tokens against
(``servicekit.sessions``).
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models
from django.utils import timezone

from servicekit.events.models import DeadLetter, InboxEvent, OutboxEvent

__all__ = ["OutboxEvent", "InboxEvent", "DeadLetter", "AuditEntry", "AppendOnlyError", "SessionRevocation"]


class AppendOnlyError(RuntimeError):
    """An audit entry was about to be changed or deleted outside the retention purge."""


class AuditQuerySet(models.QuerySet["AuditEntry"]):
    """Refuses bulk changes: entries are only ever added, and removed by ``servicekit.audit.purge_expired``."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit entries are append-only")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("audit entries are removed only by the retention purge")


class AuditEntry(models.Model):
    """One security event: who did what, from where, in which request, and how it ended.

    Append-only: saving an existing entry, deleting one, or a queryset ``update``/``delete`` raises
    ``AppendOnlyError``; on PostgreSQL a trigger refuses ``UPDATE`` as well (migration 0002).
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    service = models.CharField(max_length=50)
    event = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=64, blank=True, default="")
    actor_username = models.CharField(max_length=150, blank=True, default="")
    client_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True, default="")
    trace_id = models.CharField(max_length=32, blank=True, default="")
    method = models.CharField(max_length=10, blank=True, default="")
    path = models.CharField(max_length=500, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        db_table = "servicekit_audit_entry"
        ordering = ("-at", "-id")
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["event", "at"], name="sk_audit_event_at_idx"),
            models.Index(fields=["actor_username"], name="sk_audit_actor_idx"),
            models.Index(fields=["client_address"], name="sk_audit_address_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.event} {self.outcome} {self.actor_username or '-'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit entries are removed only by the retention purge")


class SessionRevocation(models.Model):
    """A user whose sessions were revoked: tokens of an older session generation (``sgen``) are refused.

    The issuer (polls_service) increments ``generation`` when it revokes; the other services hold a copy
    from the ``user.sessions_revoked`` event, applied only when newer (versions, not clocks).
    ``revoked_at`` is when *this* service learnt of it, on its own clock: only rows younger than an access
    token's lifetime can still refuse one, so that is all a process keeps in memory.
    """

    user_id = models.BigIntegerField(primary_key=True)
    generation = models.PositiveIntegerField()
    revoked_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "servicekit_session_revocation"

    def __str__(self) -> str:
        return f"user {self.user_id}: sessions before generation {self.generation} revoked"
