"""Django admin for operators: find polls, see their state; state changes go through the services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from polls.models import Participation, Poll
from polls.services import poll_close, poll_delete
from servicekit.errors import Problem
from servicekit.principal import ROLE_OPERATOR, ROLE_USER, Principal


def _operator(request: HttpRequest) -> Principal:
    user: Any = request.user
    return Principal(id=user.pk, username=user.get_username(), roles=frozenset({ROLE_USER, ROLE_OPERATOR}))


@admin.register(Poll)
class PollAdmin(admin.ModelAdmin):
    list_display = ("question", "status", "owner_username", "owner_id", "choice_count", "closes_at", "created_at")
    list_filter = ("status",)
    search_fields = ("question", "description", "owner_username", "=id")
    ordering = ("-created_at",)
    readonly_fields = (
        "id",
        "status",
        "owner_id",
        "owner_username",
        "choice_count",
        "opened_at",
        "closed_at",
        "created_at",
        "updated_at",
    )
    fields = ("id", "question", "description", "closes_at", *readonly_fields[1:])
    actions = ("close_polls", "delete_polls")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # polls are created through the API, with their event

    def has_change_permission(self, request: HttpRequest, obj: Poll | None = None) -> bool:
        return False  # edits go through the API so the event is emitted; the admin is for finding and closing

    def has_delete_permission(self, request: HttpRequest, obj: Poll | None = None) -> bool:
        return False  # deletion goes through the API (poll_delete emits poll.deleted)

    @admin.action(description="Close the selected open polls")
    def close_polls(self, request: HttpRequest, queryset: Any) -> None:
        actor = _operator(request)
        closed = 0
        for poll in queryset:
            try:
                poll_close(poll=poll, actor=actor)
                closed += 1
            except Problem as exc:
                self.message_user(request, f"{poll}: {exc.detail}", messages.WARNING)
        self.message_user(request, f"Closed {closed} poll(s).", messages.SUCCESS)

    @admin.action(description="Delete the selected polls (emits poll.deleted)")
    def delete_polls(self, request: HttpRequest, queryset: Any) -> None:
        actor = _operator(request)
        deleted = 0
        for poll in queryset:
            try:
                poll_delete(poll=poll, actor=actor)
                deleted += 1
            except Problem as exc:
                self.message_user(request, f"{poll}: {exc.detail}", messages.WARNING)
        self.message_user(request, f"Deleted {deleted} poll(s).", messages.SUCCESS)


@admin.register(Participation)
class ParticipationAdmin(admin.ModelAdmin):
    list_display = ("poll_id", "voter_id", "created_at")
    search_fields = ("=poll_id", "=voter_id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Participation | None = None) -> bool:
        return False
