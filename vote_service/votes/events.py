"""Event consumers of vote_service: poll and choice replicas (and results invalidation).

Each change is stored by the event's ``version`` (``servicekit.replicas``): an older event, a late
redelivery or one racing a fetch changes nothing; ``occurred_at`` (the producer's clock) is never
compared. The framework runs each handler in one transaction together with its inbox record.
"""

from __future__ import annotations

import logging

from servicekit import sessions
from servicekit.events import Event, handles
from votes.services import choice_replica_apply, poll_replica_apply, poll_replica_state

logger = logging.getLogger(__name__)


def _versioned(event: Event) -> bool:
    if event.version is None:
        # Cannot be ordered against what the replica holds; the owner's next change, a fetch or a
        # seal carries the state with its version.
        logger.warning("event without a version ignored", extra={"event_id": event.id, "event_type": event.type})
        return False
    return True


@handles("poll.created", "poll.updated", "poll.opened", "poll.closed", "poll.deleted")
def on_poll_changed(event: Event) -> None:
    if _versioned(event):
        poll_replica_apply(
            poll_id=event.data["id"], version=event.version, state=poll_replica_state(event.data, event.type)
        )


@handles("choice.created", "choice.updated", "choice.deleted")
def on_choice_changed(event: Event) -> None:
    if _versioned(event):
        choice_replica_apply(
            choice_id=event.data["id"],
            version=event.version,
            poll_id=event.data["poll_id"],
            position=int(event.data.get("position") or 0),
            deleted=event.type == "choice.deleted",
        )


@handles("user.sessions_revoked")
def on_sessions_revoked(event: Event) -> None:
    """The user's older tokens are refused here too from now on (servicekit.sessions; highest generation wins)."""
    sessions.apply(user_id=int(event.data["user_id"]), generation=int(event.data["generation"]))
