"""Django admin for operators: find polls, see their state; state changes go through the services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from polls.models import ChoiceReplica, Poll, VoteReplica
from polls.selectors import with_choice_count
from polls.services import poll_close, poll_delete
from servicekit.errors import Problem
from servicekit.principal import ROLE_OPERATOR, ROLE_USER, Principal


def _operator(request: HttpRequest) -> Principal:
    user: Any = request.user
    return Principal(id=user.pk, username=user.get_username(), roles=frozenset({ROLE_USER, ROLE_OPERATOR}))


@admin.register(Poll)
class PollAdmin(admin.ModelAdmin):
    list_display = (
        "question",
        "status",
        "owner_username",
        "owner_id",
        "choice_count",
        "version",
        "closes_at",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("question", "description", "owner_username", "=id")
    ordering = ("-created_at",)
    readonly_fields = (
        "id",
        "status",
        "owner_id",
        "owner_username",
        "choice_count",
        "version",
        "opened_at",
        "closed_at",
        "created_at",
        "updated_at",
    )
    fields = ("id", "question", "description", "closes_at", *readonly_fields[1:])
    actions = ("close_polls", "delete_polls")

    def get_queryset(self, request: HttpRequest) -> Any:
        return with_choice_count(super().get_queryset(request))

    @admin.display(description="choices", ordering="choice_count")
    def choice_count(self, poll: Poll) -> int:
        """Live choices, from the choice-event projection."""
        return poll.choice_count

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


class ReplicaAdmin(admin.ModelAdmin):
    """Read-only: projections change only through the events they are kept from."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(VoteReplica)
class VoteReplicaAdmin(ReplicaAdmin):
    list_display = ("id", "poll_id", "voter_id", "deleted", "version")
    list_filter = ("deleted",)
    search_fields = ("=id", "=poll_id", "=voter_id")


@admin.register(ChoiceReplica)
class ChoiceReplicaAdmin(ReplicaAdmin):
    list_display = ("id", "poll_id", "deleted", "version")
    list_filter = ("deleted",)
    search_fields = ("=id", "=poll_id")
