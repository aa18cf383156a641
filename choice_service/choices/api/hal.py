"""v3 (HAL) representation of a choice: its fields plus ``_links`` to related resources and allowed actions."""

from __future__ import annotations

from typing import Any

from choices.api.serializers import ChoiceSerializer
from choices.models import Choice, PollReplica
from choices.selectors import can_manage_poll
from servicekit.api.hal import action, link, links_field


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
