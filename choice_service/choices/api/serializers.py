"""Choice representation (v1, v2) and request bodies; v3 (HAL) in ``api/hal.py``. Plain ``Serializer``s: the
service functions decide the rules."""

from __future__ import annotations

from rest_framework import serializers

from choices.models import TEXT_MAX_LENGTH
from servicekit.api.fields import TextField
from servicekit.api.strict_fields import StrictIntegerField, StrictUUIDField

MAX_POSITION = 10_000


class ChoiceSerializer(serializers.Serializer):
    """v1/v2: ``{id, poll, text, position, votes}``; ``votes`` is the tally kept from vote events."""

    id = serializers.UUIDField(read_only=True)
    poll = serializers.UUIDField(source="poll_id", read_only=True)
    text = serializers.CharField(read_only=True)
    position = serializers.IntegerField(read_only=True)
    votes = serializers.IntegerField(read_only=True, help_text="Votes for this choice (read-only tally).")


class ChoiceCreateSerializer(serializers.Serializer):
    """POST body. ``votes`` and any unknown field are ignored; the tally always starts at 0."""

    poll = StrictUUIDField(help_text="The poll (a draft you own) to add the choice to.")
    text = TextField(min_length=1, max_length=TEXT_MAX_LENGTH)
    position = StrictIntegerField(
        required=False, min_value=0, max_value=MAX_POSITION, help_text="Display order; default: after the last."
    )


class ChoiceUpdateSerializer(serializers.Serializer):
    """PATCH body: new text and/or position (reorder). ``poll`` and ``votes`` cannot be changed (ignored)."""

    text = TextField(min_length=1, max_length=TEXT_MAX_LENGTH, required=False)
    position = StrictIntegerField(required=False, min_value=0, max_value=MAX_POSITION)
