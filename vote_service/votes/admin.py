from django.contrib import admin

from votes.models import ChoiceReplica, PollReplica, Vote


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ("id", "poll_id", "choice_id", "voter_id", "version", "created_at")
    search_fields = ("=id", "=poll_id", "=voter_id")
    readonly_fields = ("id", "poll_id", "choice_id", "voter_id", "version", "created_at", "updated_at")


@admin.register(PollReplica)
class PollReplicaAdmin(admin.ModelAdmin):
    list_display = ("id", "owner_id", "status", "closes_at", "version")
    list_filter = ("status",)
    search_fields = ("=id",)


@admin.register(ChoiceReplica)
class ChoiceReplicaAdmin(admin.ModelAdmin):
    list_display = ("id", "poll_id", "position", "deleted", "version")
    search_fields = ("=id", "=poll_id")
