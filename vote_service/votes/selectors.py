"""Reads of vote_service."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from servicekit.principal import Principal
from votes.models import PollReplica, Vote


def vote_list_own(*, actor: Principal) -> QuerySet[Vote]:
    """The caller's votes only, newest first."""
    return Vote.objects.filter(voter_id=actor.id).order_by("-created_at", "id")


def vote_get_own(*, actor: Principal, vote_id: uuid.UUID) -> Vote | None:
    return Vote.objects.filter(pk=vote_id, voter_id=actor.id).first()


def vote_ledger_page(*, poll_id: uuid.UUID, after: uuid.UUID | None, limit: int) -> dict[str, Any]:
    """One page of a poll's votes ordered by id, after ``after`` (keyset): ``{poll_id, votes: [{id,
    choice_id, version}], next}``; ``next`` (the last id) is null on the last page. For choice_service's
    reconciliation by vote id."""
    votes = Vote.objects.filter(poll_id=poll_id)
    if after is not None:
        votes = votes.filter(id__gt=after)
    rows = list(votes.order_by("id").values_list("id", "choice_id", "version")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "poll_id": str(poll_id),
        "votes": [{"id": str(id_), "choice_id": str(choice), "version": version} for id_, choice, version in rows],
        "next": str(rows[-1][0]) if more else None,
    }


def poll_visible(*, actor: Principal | None, poll: PollReplica) -> bool:
    """Drafts are visible to their owner and operators only; deleted polls to nobody."""
    if poll.is_deleted:
        return False
    if not poll.is_draft:
        return True
    if actor is None or not getattr(actor, "is_authenticated", False):
        return False
    return bool(getattr(actor, "is_operator", False)) or actor.id == poll.owner_id


def poll_replicas_by_id(*, poll_ids: set) -> dict:
    """Replicas of the given polls in one query (for per-item action links)."""
    return {poll.id: poll for poll in PollReplica.objects.filter(pk__in=poll_ids)}
