"""Event consumers of vote_service: poll and choice replicas (and results invalidation).

The framework runs each handler in one transaction together with its inbox record, so a redelivered
event changes nothing.
"""

from __future__ import annotations

from servicekit.events import Event, handles
from votes.services import choice_replica_apply, poll_replica_apply


@handles("poll.created", "poll.updated", "poll.opened", "poll.closed", "poll.deleted")
def on_poll_changed(event: Event) -> None:
    poll_replica_apply(event_type=event.type, data=event.data, occurred_at=event.occurred_at)


@handles("choice.created", "choice.updated", "choice.deleted")
def on_choice_changed(event: Event) -> None:
    choice_replica_apply(event_type=event.type, data=event.data, occurred_at=event.occurred_at)
