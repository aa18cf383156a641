"""Request bodies of the poll endpoints (the same in every version) and the v1/v2 representation."""

from __future__ import annotations

from rest_framework import serializers

from polls.models import DESCRIPTION_MAX, QUESTION_MAX, Poll, PollStatus
from servicekit.api.fields import TextField


class PollCreateSerializer(serializers.Serializer):
    """A new poll. Owner and status are never taken from the body (the caller; always draft)."""

    question = TextField(min_length=1, max_length=QUESTION_MAX)
    description = TextField(max_length=DESCRIPTION_MAX, multiline=True, required=False, allow_blank=True, default="")
    closes_at = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="In the future.")


class PollUpdateSerializer(serializers.Serializer):
    """A change to a draft: any of question, description, closes_at (``null`` clears it)."""

    question = TextField(min_length=1, max_length=QUESTION_MAX, required=False)
    description = TextField(max_length=DESCRIPTION_MAX, multiline=True, required=False, allow_blank=True)
    closes_at = serializers.DateTimeField(required=False, allow_null=True, help_text="In the future.")


class PollSerializer(serializers.ModelSerializer):
    """A poll (v1, v2)."""

    owner = serializers.IntegerField(source="owner_id", read_only=True, help_text="The owner's user id.")
    status = serializers.ChoiceField(choices=PollStatus.choices, read_only=True)

    class Meta:
        model = Poll
        fields = (
            "id",
            "question",
            "description",
            "status",
            "owner",
            "owner_username",
            "closes_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields
