"""Operators see the event machinery of each service in its admin: pending outbox rows and dead letters.

Dead letters can be replayed from the admin (action) or with ``manage.py replay_dead_letters``.
"""

from __future__ import annotations

from django.contrib import admin, messages

from servicekit.events.models import DeadLetter, InboxEvent, OutboxEvent


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("id", "event_type", "aggregate_id", "created_at", "sent_at", "attempts")
    list_filter = ("event_type", ("sent_at", admin.EmptyFieldListFilter))
    search_fields = ("=event_id", "=aggregate_id")
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]

    def has_add_permission(self, request):  # events are only ever written by emit()
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(InboxEvent)
class InboxEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "event_type", "handler", "received_at")
    list_filter = ("event_type",)
    search_fields = ("=event_id",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("id", "event_type", "event_id", "queue", "attempts", "created_at", "replayed_at")
    list_filter = ("event_type", ("replayed_at", admin.EmptyFieldListFilter))
    search_fields = ("=event_id",)
    readonly_fields = [f.name for f in DeadLetter._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Replay selected dead letters")
    def replay(self, request, queryset):
        from servicekit.events.deadletters import replay_dead_letters

        count = replay_dead_letters(ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"Replayed {count} dead letter(s).", messages.SUCCESS)
