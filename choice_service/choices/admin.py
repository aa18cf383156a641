from django.contrib import admin

from choices.models import Choice, PollReplica


@admin.register(Choice)
class ChoiceAdmin(admin.ModelAdmin):
    list_display = ("text", "poll_id", "position", "votes", "updated_at")
    search_fields = ("text", "=poll_id", "=id")
    readonly_fields = ("id", "votes", "created_at", "updated_at")
    ordering = ("poll_id", "position")


@admin.register(PollReplica)
class PollReplicaAdmin(admin.ModelAdmin):
    list_display = ("id", "owner_id", "status", "closes_at", "source_time")
    list_filter = ("status",)
    search_fields = ("=id",)
    readonly_fields = ("id", "owner_id", "status", "closes_at", "source_time", "updated_at")
