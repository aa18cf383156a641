"""Reads of vote_service."""

from __future__ import annotations

import uuid

from django.db.models import Count, QuerySet

from servicekit.principal import Principal
from votes.models import PollReplica, Vote


def vote_list_own(*, actor: Principal) -> QuerySet[Vote]:
    """The caller's votes only, newest first."""
    return Vote.objects.filter(voter_id=actor.id).order_by("-created_at", "id")


def vote_get_own(*, actor: Principal, vote_id: uuid.UUID) -> Vote | None:
    return Vote.objects.filter(pk=vote_id, voter_id=actor.id).first()


def vote_counts(*, poll_id: uuid.UUID) -> dict[str, int]:
    """The ledger's count per choice of a poll (for choice_service's tally reconciliation)."""
    rows = Vote.objects.filter(poll_id=poll_id).values_list("choice_id").annotate(n=Count("id")).order_by()
    return {str(choice_id): n for choice_id, n in rows}


def poll_visible(*, actor: Principal | None, poll: PollReplica) -> bool:
    """Drafts are visible to their owner and operators only; deleted polls to nobody."""
    if poll.status == PollReplica.Status.DELETED:
        return False
    if poll.status != PollReplica.Status.DRAFT:
        return True
    if actor is None or not getattr(actor, "is_authenticated", False):
        return False
    return bool(getattr(actor, "is_operator", False)) or actor.id == poll.owner_id


def has_voted(*, actor: Principal | None, poll_id: uuid.UUID) -> bool:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return False
    return Vote.objects.filter(poll_id=poll_id, voter_id=actor.id).exists()


def poll_replicas_by_id(*, poll_ids: set) -> dict:
    """Replicas of the given polls in one query (for per-item action links)."""
    return {poll.id: poll for poll in PollReplica.objects.filter(pk__in=poll_ids)}
