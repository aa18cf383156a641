"""Event consumers of polls_service: the choice and vote projections (``ChoiceReplica``, ``VoteReplica``).

Each handler takes the not-yet-applied events of one delivered batch and writes them in one statement,
by version (servicekit.replicas): the framework runs it in one transaction together with the batch's
inbox records, so a redelivered event changes nothing, and events applied late or out of order
(a retraction before its cast) end in the same state.
"""

from __future__ import annotations

from polls.services import choice_replicas_apply, vote_replicas_apply
from servicekit.events import Event, handles


@handles("choice.created", "choice.updated", "choice.deleted", batch=True)
def on_choice_events(events: list[Event]) -> None:
    choice_replicas_apply(events)


@handles("vote.cast", "vote.retracted", batch=True)
def on_vote_events(events: list[Event]) -> None:
    vote_replicas_apply(events)
