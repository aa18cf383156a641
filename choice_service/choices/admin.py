from django.contrib import admin

from choices.models import Choice, PollReplica, VoteProjection


@admin.register(Choice)
class ChoiceAdmin(admin.ModelAdmin):
    list_display = ("text", "poll_id", "position", "version", "updated_at")
    search_fields = ("text", "=poll_id", "=id")
    readonly_fields = ("id", "version", "created_at", "updated_at")
    ordering = ("poll_id", "position")


@admin.register(PollReplica)
class PollReplicaAdmin(admin.ModelAdmin):
    list_display = ("id", "owner_id", "status", "closes_at", "version")
    list_filter = ("status",)
    search_fields = ("=id",)
    readonly_fields = ("id", "owner_id", "status", "closes_at", "version")


@admin.register(VoteProjection)
class VoteProjectionAdmin(admin.ModelAdmin):
    list_display = ("id", "poll_id", "choice_id", "deleted", "version")
    list_filter = ("deleted",)
    search_fields = ("=id", "=poll_id", "=choice_id")
    readonly_fields = ("id", "poll_id", "choice_id", "deleted", "version")
