"""Event consumers of choice_service: the poll replica and the per-vote projection (the tallies).

The framework runs handlers in one transaction together with their inbox records, so a redelivered
event changes nothing; replicas are ordered by the aggregate's version, so events applied late or
out of order change nothing either.
"""

from __future__ import annotations

from typing import Any

from choices.services import poll_replica_apply, vote_projection_apply
from servicekit import sessions
from servicekit.events import Event, handles
from servicekit.replicas import poll_state


def _version(event: Event) -> int:
    if event.version is None:
        raise ValueError(f"{event.type} event {event.id} carries no version")
    return int(event.version)


@handles("poll.created", "poll.updated", "poll.opened", "poll.closed", "poll.deleted")
def on_poll_changed(event: Event) -> None:
    poll_replica_apply(poll_id=event.aggregate_id, version=_version(event), state=poll_state(event.data, event.type))


def _vote_row(event: Event) -> dict[str, Any]:
    return {
        "id": event.data["id"],
        "version": _version(event),
        "poll_id": event.data["poll_id"],
        "choice_id": event.data["choice_id"],
        "deleted": event.type == "vote.retracted",
    }


@handles("vote.cast", "vote.changed", "vote.retracted", batch=True)
def on_votes(events: list[Event]) -> None:
    """cast and changed store the vote on its (new) choice, retracted marks it deleted, each at the vote's
    version: one statement for the whole batch. A vote for a choice unknown here is recorded all the same."""
    vote_projection_apply(rows=[_vote_row(event) for event in events])


@handles("user.sessions_revoked")
def on_sessions_revoked(event: Event) -> None:
    """The user's older tokens are refused here too from now on (servicekit.sessions; highest generation wins)."""
    sessions.apply(user_id=int(event.data["user_id"]), generation=int(event.data["generation"]))
