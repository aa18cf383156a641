"""Operators see the event machinery of each service in its admin: pending outbox rows and dead letters.

Dead letters can be replayed from the admin (action) or with ``manage.py replay_dead_letters``.
The audit trail is read-only there: filter by event, outcome and service, search actor or address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from servicekit.events.models import DeadLetter, InboxEvent, OutboxEvent
from servicekit.models import AuditEntry

if TYPE_CHECKING:  # ModelAdmin is generic in django-stubs only (no django_stubs_ext at run time)
    OutboxModelAdmin = admin.ModelAdmin[OutboxEvent]
    InboxModelAdmin = admin.ModelAdmin[InboxEvent]
    DeadLetterModelAdmin = admin.ModelAdmin[DeadLetter]
    AuditEntryModelAdmin = admin.ModelAdmin[AuditEntry]
else:
    OutboxModelAdmin = InboxModelAdmin = DeadLetterModelAdmin = AuditEntryModelAdmin = admin.ModelAdmin


@admin.register(OutboxEvent)
class OutboxEventAdmin(OutboxModelAdmin):
    list_display = ("id", "event_type", "aggregate_id", "created_at", "sent_at", "attempts")
    list_filter = ("event_type", ("sent_at", admin.EmptyFieldListFilter))
    search_fields = ("=event_id", "=aggregate_id")
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:  # events are only ever written by emit()
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(InboxEvent)
class InboxEventAdmin(InboxModelAdmin):
    list_display = ("event_id", "event_type", "handler", "received_at")
    list_filter = ("event_type",)
    search_fields = ("=event_id",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DeadLetter)
class DeadLetterAdmin(DeadLetterModelAdmin):
    list_display = ("id", "event_type", "event_id", "queue", "attempts", "created_at", "replayed_at")
    list_filter = ("event_type", ("replayed_at", admin.EmptyFieldListFilter))
    search_fields = ("=event_id",)
    readonly_fields = [f.name for f in DeadLetter._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Replay selected dead letters")
    def replay(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        from servicekit.events.deadletters import replay_dead_letters

        count = replay_dead_letters(ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"Replayed {count} dead letter(s).", messages.SUCCESS)


@admin.register(AuditEntry)
class AuditEntryAdmin(AuditEntryModelAdmin):
    """The audit trail, read-only: nobody adds, edits or deletes an entry here (retention purges them)."""

    list_display = ("at", "event", "outcome", "actor_username", "client_address", "method", "path", "request_id")
    list_filter = ("event", "outcome", "service", ("at", admin.DateFieldListFilter))
    search_fields = ("actor_username", "=actor_id", "=client_address", "=request_id", "=trace_id")
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    date_hierarchy = "at"
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
