"""Reads of polls: who may see which poll, and what the v3 links need to know about the caller."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.db.models import Q, QuerySet
from django.http import Http404

from polls.models import ChoiceReplica, Poll, PollStatus, VoteReplica
from servicekit.permissions import is_operator, is_principal
from servicekit.replicas import live_count


def poll_list_visible(*, actor: Any) -> QuerySet[Poll]:
    """Non-draft polls for everyone; drafts only for their owner; operators see every poll."""
    polls = Poll.objects.all()
    if is_operator(actor):
        return polls
    if is_principal(actor):
        return polls.filter(~Q(status=PollStatus.DRAFT) | Q(owner_id=actor.id))
    return polls.exclude(status=PollStatus.DRAFT)


def poll_get_visible(*, actor: Any, poll_id: Any) -> Poll:
    """The poll if the caller may see it; ``Http404`` otherwise (a hidden draft does not exist for them)."""
    try:
        return poll_list_visible(actor=actor).get(pk=poll_id)
    except (Poll.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def poll_get(*, poll_id: Any) -> Poll | None:
    """Any poll by id, visible or not (internal endpoint, tasks)."""
    try:
        return Poll.objects.get(pk=poll_id)
    except (Poll.DoesNotExist, ValueError, TypeError):
        return None


def with_choice_count(polls: QuerySet[Poll]) -> QuerySet[Poll]:
    """``polls`` annotated with ``choice_count``: the live choices of each kept from choice events
    (a subquery, so a list stays one query)."""
    return polls.annotate(choice_count=live_count(ChoiceReplica, by="poll_id"))


def polls_voted_by(*, actor: Any, poll_ids: Iterable[UUID]) -> set[UUID]:
    """Of ``poll_ids``, those the caller has a live vote on (from the vote-event projection); one query."""
    if not is_principal(actor):
        return set()
    ids = list(poll_ids)
    if not ids:
        return set()
    votes = VoteReplica.objects.filter(voter_id=actor.id, poll_id__in=ids, deleted=False)
    return set(votes.values_list("poll_id", flat=True).distinct())


def polls_due_to_close(*, now: Any) -> QuerySet[Poll]:
    """Open polls whose ``closes_at`` has passed (the auto-close task closes them)."""
    return Poll.objects.filter(status=PollStatus.OPEN, closes_at__isnull=False, closes_at__lte=now)
