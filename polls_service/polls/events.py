"""Event consumers of polls_service: the ``choice_count`` and participation projections.

The framework runs each handler in one transaction together with its inbox record, so a redelivered
event changes nothing.
"""

from __future__ import annotations

from polls.services import participation_forget, participation_record, poll_choice_count_adjust
from servicekit.events import Event, handles


@handles("choice.created")
def on_choice_created(event: Event) -> None:
    poll_choice_count_adjust(poll_id=event.data["poll_id"], delta=1)


@handles("choice.deleted")
def on_choice_deleted(event: Event) -> None:
    poll_choice_count_adjust(poll_id=event.data["poll_id"], delta=-1)


@handles("vote.cast")
def on_vote_cast(event: Event) -> None:
    participation_record(poll_id=event.data["poll_id"], voter_id=event.data["voter_id"])


@handles("vote.retracted")
def on_vote_retracted(event: Event) -> None:
    participation_forget(poll_id=event.data["poll_id"], voter_id=event.data["voter_id"])
