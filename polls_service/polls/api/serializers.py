"""Request bodies of the poll endpoints (the same in every version) and the v1/v2 representation."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from polls.models import DESCRIPTION_MAX, QUESTION_MAX, Poll, PollStatus
from servicekit import voter_policy
from servicekit.api.fields import TextField


class VoterPolicySerializer(serializers.Serializer):
    """Who may vote (every attribute given must hold; none given: every signed-in user)."""

    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=voter_policy.ROLES),
        min_length=1,
        max_length=len(voter_policy.ROLES),
        required=False,
        help_text="The voter's token holds at least one of these roles.",
    )
    min_account_age_days = serializers.IntegerField(
        min_value=0,
        max_value=voter_policy.MAX_ACCOUNT_AGE_DAYS,
        required=False,
        help_text="The voter's account is at least this many days old.",
    )

    def to_internal_value(self, data: Any) -> Any:
        return voter_policy.normalise(dict(super().to_internal_value(data))) or {}


def _no_empty_policy(value: dict[str, Any] | None) -> dict[str, Any] | None:
    return value or None  # {} restricts nothing: stored as no policy


class PollCreateSerializer(serializers.Serializer):
    """A new poll. Owner and status are never taken from the body (the caller; always draft)."""

    question = TextField(min_length=1, max_length=QUESTION_MAX)
    description = TextField(max_length=DESCRIPTION_MAX, multiline=True, required=False, allow_blank=True, default="")
    closes_at = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="In the future.")
    voter_policy = VoterPolicySerializer(required=False, allow_null=True, default=None)

    def validate_voter_policy(self, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _no_empty_policy(value)


class PollUpdateSerializer(serializers.Serializer):
    """A change to a draft: any of question, description, closes_at, voter_policy (``null`` clears the last two)."""

    question = TextField(min_length=1, max_length=QUESTION_MAX, required=False)
    description = TextField(max_length=DESCRIPTION_MAX, multiline=True, required=False, allow_blank=True)
    closes_at = serializers.DateTimeField(required=False, allow_null=True, help_text="In the future.")
    voter_policy = VoterPolicySerializer(required=False, allow_null=True)

    def validate_voter_policy(self, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _no_empty_policy(value)


class PollSerializer(serializers.ModelSerializer):
    """A poll (v1, v2)."""

    owner = serializers.IntegerField(source="owner_id", read_only=True, help_text="The owner's user id.")
    status = serializers.ChoiceField(choices=PollStatus.choices, read_only=True)
    voter_policy = VoterPolicySerializer(read_only=True, allow_null=True)

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
            "voter_policy",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields
