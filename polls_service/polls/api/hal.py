"""v3 (HAL) representation of a poll: fields plus ``_links`` to related resources and allowed actions."""

from __future__ import annotations

from typing import Any

from polls.api.serializers import PollSerializer
from polls.models import Poll
from servicekit import voter_policy
from servicekit.api.hal import action, link, links_field
from servicekit.permissions import can_manage, is_operator, is_principal

POLL_ACTIONS = ("edit", "delete", "open", "close", "add_choice", "vote")


def poll_links(poll: Poll, *, actor: Any, voted: bool, claims: dict[str, Any] | None = None) -> dict[str, Any]:
    """The links of ``poll`` for ``actor``: related resources always, actions only when allowed now
    (``vote`` only if the poll's voter policy admits the caller's token ``claims``)."""
    href = f"/api/v3/polls/{poll.id}/"
    links: dict[str, Any] = {
        "self": link(href),
        "choices": link(f"/api/v3/choices/?poll={poll.id}"),
        "results": link(f"/api/v3/results/{poll.id}/"),
    }
    if can_manage(actor, poll.owner_id):
        if poll.is_draft:
            links["edit"] = action(href, "PATCH")
            links["delete"] = action(href, "DELETE")
            links["open"] = action(f"{href}open/", "POST")
            links["add_choice"] = action("/api/v3/choices/", "POST")
        elif is_operator(actor):
            links["delete"] = action(href, "DELETE")
        if poll.is_open:
            links["close"] = action(f"{href}close/", "POST")
    if (
        poll.is_open
        and is_principal(actor)
        and not voted
        and voter_policy.refusal(poll.voter_policy, claims or {}) is None
    ):
        links["vote"] = action("/api/v3/votes/", "POST")
    return links


class PollHALSerializer(PollSerializer):
    """A poll (v3, ``application/hal+json``)."""

    _links = links_field("self", "choices", "results", optional=POLL_ACTIONS)

    class Meta(PollSerializer.Meta):
        fields = (*PollSerializer.Meta.fields, "_links")
        read_only_fields = fields

    def get__links(self, poll: Poll) -> dict[str, Any]:
        request = self.context.get("request")
        actor = getattr(request, "user", None)
        voted = poll.id in self.context.get("voted", ())
        claims = getattr(request, "auth", None)
        return poll_links(poll, actor=actor, voted=voted, claims=claims if isinstance(claims, dict) else None)
