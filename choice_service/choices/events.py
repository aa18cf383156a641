"""Event consumers of choice_service: the poll replica and the vote tallies.

The framework runs each handler in one transaction together with its inbox record, so a redelivered
event changes nothing.
"""

from __future__ import annotations

from choices.services import choice_tally_apply, poll_replica_apply
from servicekit.events import Event, handles


@handles("poll.created", "poll.updated", "poll.opened", "poll.closed", "poll.deleted")
def on_poll_changed(event: Event) -> None:
    poll_replica_apply(event_type=event.type, data=event.data, occurred_at=event.occurred_at)


@handles("vote.cast")
def on_vote_cast(event: Event) -> None:
    choice_tally_apply(choice_id=event.data["choice_id"], delta=1)


@handles("vote.changed")
def on_vote_changed(event: Event) -> None:
    if event.data["previous_choice_id"] == event.data["choice_id"]:
        return
    choice_tally_apply(choice_id=event.data["previous_choice_id"], delta=-1)
    choice_tally_apply(choice_id=event.data["choice_id"], delta=1)


@handles("vote.retracted")
def on_vote_retracted(event: Event) -> None:
    choice_tally_apply(choice_id=event.data["choice_id"], delta=-1)
