"""v3 (HAL) representations of a vote and of results: their fields plus ``_links`` to related resources
and the actions allowed now."""

from __future__ import annotations

from typing import Any

from servicekit.api.hal import action, link, links_field
from votes.api.serializers import ResultsSerializer, VoteSerializer
from votes.models import PollReplica, Vote


def _vote_links(vote: Vote, context: dict[str, Any]) -> dict[str, Any]:
    href = f"/api/v3/votes/{vote.id}/"
    links = {
        "self": link(href),
        "poll": link(f"/api/v3/polls/{vote.poll_id}/"),
        "choice": link(f"/api/v3/choices/{vote.choice_id}/"),
    }
    poll: PollReplica | None = (context.get("polls") or {}).get(vote.poll_id)
    if poll is not None and poll.is_open_at():
        links["change"] = action(href, "PATCH")
        links["retract"] = action(href, "DELETE")
    return links


class VoteHALSerializer(VoteSerializer):
    """v3: the vote with links to itself, its poll and choice; ``change``/``retract`` while the poll is open."""

    # The view puts the replicas of the votes' polls in ``context["polls"]`` (by id) for the actions.

    _links = links_field("self", "poll", "choice", optional=("change", "retract"))

    def get__links(self, vote: Vote) -> dict[str, Any]:
        return _vote_links(vote, self.context)

    @classmethod
    def fast_represent(cls, vote: Vote, context: dict[str, Any]) -> dict[str, Any] | None:
        body = super().fast_represent(vote, context)
        if body is not None:
            body["_links"] = _vote_links(vote, context)
        return body


class ResultsHALSerializer(ResultsSerializer):
    _links = links_field("self", "poll")

    def to_representation(self, instance: dict[str, Any]) -> dict[str, Any]:
        poll = instance["poll"]
        return {
            **instance,
            "_links": {"self": link(f"/api/v3/results/{poll}/"), "poll": link(f"/api/v3/polls/{poll}/")},
        }
