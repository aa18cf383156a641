"""Reads of choice_service: querysets and plain values, no writes."""

from __future__ import annotations

import uuid

from django.db.models import Q, QuerySet

from choices.models import Choice, PollReplica, VoteProjection
from servicekit.permissions import can_manage, is_operator, is_principal
from servicekit.principal import Principal
from servicekit.replicas import live_count


def _visible_poll_ids(actor: Principal | None) -> QuerySet:
    """Polls whose choices the caller may read: every non-draft poll, drafts only for owner or operator."""
    polls = PollReplica.objects.exclude(status=PollReplica.Status.DELETED)
    if is_operator(actor):
        return polls.values("id")
    if is_principal(actor):
        return polls.filter(~Q(status=PollReplica.Status.DRAFT) | Q(owner_id=actor.id)).values("id")
    return polls.exclude(status=PollReplica.Status.DRAFT).values("id")


def with_votes(choices: QuerySet[Choice]) -> QuerySet[Choice]:
    """``choices`` annotated with ``votes``: the number of live rows of the vote projection for each (one
    query for a whole list, counted on the partial index of live votes)."""
    return choices.annotate(votes=live_count(VoteProjection, by="choice_id"))


def choice_list_visible(*, actor: Principal | None, poll_id: uuid.UUID | None = None) -> QuerySet[Choice]:
    """Choices the caller may read (with their ``votes``), optionally of one poll, in display order."""
    choices = with_votes(Choice.objects.filter(poll_id__in=_visible_poll_ids(actor)))
    if poll_id is not None:
        choices = choices.filter(poll_id=poll_id)
    return choices.order_by("position", "created_at", "id")


def choice_get_visible(*, actor: Principal | None, choice_id: uuid.UUID) -> Choice | None:
    return choice_list_visible(actor=actor).filter(pk=choice_id).first()


def choice_get_with_votes(*, choice_id: uuid.UUID) -> Choice | None:
    """One choice with its ``votes``, whoever may see it (to answer a write the caller was allowed)."""
    return with_votes(Choice.objects.filter(pk=choice_id)).first()


def poll_replica_get(*, poll_id: uuid.UUID) -> PollReplica | None:
    return PollReplica.objects.filter(pk=poll_id).first()


def poll_choices_for_internal(*, poll_id: uuid.UUID) -> list[dict]:
    """The choices of a poll as other services learn them (``/internal/polls/{id}/choices/``)."""
    rows = Choice.objects.filter(poll_id=poll_id).order_by("position", "created_at", "id")
    return [{"id": str(c.id), "text": c.text, "position": c.position, "version": c.version} for c in rows]


def choice_for_internal(*, choice_id: uuid.UUID) -> dict | None:
    choice = Choice.objects.filter(pk=choice_id).first()
    if choice is None:
        return None
    return {
        "id": str(choice.id),
        "poll_id": str(choice.poll_id),
        "text": choice.text,
        "position": choice.position,
        "version": choice.version,
    }


def can_manage_poll(*, actor: Principal | None, poll: PollReplica) -> bool:
    """Owner or operator: who may add, edit or remove a poll's choices (in the right state)."""
    return can_manage(actor, poll.owner_id)


def poll_replicas_by_id(*, poll_ids: set) -> dict:
    """Replicas of the given polls in one query (for per-item action links)."""
    return {poll.id: poll for poll in PollReplica.objects.filter(pk__in=poll_ids)}
