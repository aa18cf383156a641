"""Choice representations per API version. Plain ``Serializer``s: the service functions decide the rules."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from choices.models import TEXT_MAX_LENGTH, Choice, PollReplica
from choices.selectors import can_manage_poll
from servicekit.api.fields import TextField
from servicekit.api.hal import action, link, links_field
from servicekit.api.strict_fields import StrictIntegerField, StrictUUIDField

MAX_POSITION = 10_000


class ChoiceSerializer(serializers.Serializer):
    """v1/v2: ``{id, poll, text, position, votes}``; ``votes`` is the tally kept from vote events."""

    id = serializers.UUIDField(read_only=True)
    poll = serializers.UUIDField(source="poll_id", read_only=True)
    text = serializers.CharField(read_only=True)
    position = serializers.IntegerField(read_only=True)
    votes = serializers.IntegerField(read_only=True, help_text="Votes for this choice (read-only tally).")


class ChoiceHALSerializer(ChoiceSerializer):
    """v3: the choice with ``_links`` to itself, its poll, and edit/delete when the caller may."""

    _links = links_field("self", "poll", optional=("edit", "delete"))

    def get__links(self, choice: Choice) -> dict[str, Any]:
        href = f"/api/v3/choices/{choice.id}/"
        links = {"self": link(href), "poll": link(f"/api/v3/polls/{choice.poll_id}/")}
        polls: dict = self.context.get("polls") or {}
        poll: PollReplica | None = polls.get(choice.poll_id)
        request = self.context.get("request")
        actor = getattr(request, "user", None)
        if poll is not None and poll.is_draft and can_manage_poll(actor=actor, poll=poll):
            links["edit"] = action(href, "PATCH")
            links["delete"] = action(href, "DELETE")
        return links


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
