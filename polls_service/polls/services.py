"""Writes of polls: every change runs in one transaction together with the event that announces it.

The rules live here (views and tasks call these functions and never re-implement them):

- anyone authenticated creates a poll (always ``draft``, owned by the caller);
- only the owner or an operator changes a poll; question, description and ``closes_at`` only while draft;
- ``draft -> open`` needs at least two choices and a ``closes_at`` still in the future;
- ``open -> closed`` by the owner or an operator, or by the auto-close task once ``closes_at`` passed;
- a draft may be deleted by its owner; an operator may delete any poll.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from polls import clients
from polls.models import MIN_CHOICES_TO_OPEN, Participation, Poll, PollStatus
from polls.selectors import polls_due_to_close
from servicekit.errors import Conflict, UnprocessableEntity
from servicekit.events import emit
from servicekit.permissions import can_manage, is_operator, is_principal

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = ("question", "description", "closes_at")


def _event_data(poll: Poll, *, status: str | None = None) -> dict[str, Any]:
    return {
        "id": str(poll.id),
        "owner_id": poll.owner_id,
        "status": status or poll.status,
        "closes_at": poll.closes_at,
        "question": poll.question,
    }


def _require_manager(actor: Any, poll: Poll) -> None:
    if not can_manage(actor, poll.owner_id):
        raise PermissionDenied("Only the poll's owner or an operator may change it.")


def _validate_closes_at(closes_at: datetime | None, *, now: datetime | None = None) -> None:
    if closes_at is not None and closes_at <= (now or timezone.now()):
        # Well-formed but not applicable now: 422 (the schema cannot say "in the future").
        raise UnprocessableEntity(
            "closes_at: Must be in the future.",
            code="closes-at-in-past",
            errors={"closes_at": ["Must be in the future."]},
        )


def _locked(poll: Poll) -> Poll:
    """The poll re-read under a row lock, so concurrent transitions serialise."""
    try:
        return Poll.objects.select_for_update().get(pk=poll.pk)
    except Poll.DoesNotExist:
        raise Conflict("The poll no longer exists.", code="poll-gone") from None


def poll_create(*, actor: Any, question: str, description: str = "", closes_at: datetime | None = None) -> Poll:
    """A new draft poll owned by ``actor``."""
    if not is_principal(actor):
        raise PermissionDenied("Sign in to create a poll.")
    _validate_closes_at(closes_at)
    with transaction.atomic():
        poll = Poll.objects.create(
            question=question,
            description=description,
            closes_at=closes_at,
            owner_id=actor.id,
            owner_username=actor.username,
            status=PollStatus.DRAFT,
        )
        emit("poll.created", aggregate_id=str(poll.id), data=_event_data(poll))
    return poll


def poll_update(*, poll: Poll, actor: Any, data: dict[str, Any]) -> Poll:
    """Change question, description and/or closes_at of a draft (other keys are ignored)."""
    _require_manager(actor, poll)
    changes = {key: value for key, value in data.items() if key in EDITABLE_FIELDS}
    if "closes_at" in changes:
        _validate_closes_at(changes["closes_at"])
    with transaction.atomic():
        poll = _locked(poll)
        if not poll.is_draft:
            raise Conflict("A poll can only be edited while it is a draft.", code="poll-not-draft")
        if not changes:
            return poll
        for key, value in changes.items():
            setattr(poll, key, value)
        poll.save(update_fields=[*changes, "updated_at"])
        emit("poll.updated", aggregate_id=str(poll.id), data=_event_data(poll))
    return poll


def poll_delete(*, poll: Poll, actor: Any) -> None:
    """Delete a draft (owner or operator); an operator may delete a poll in any state."""
    _require_manager(actor, poll)
    with transaction.atomic():
        poll = _locked(poll)
        if not poll.is_draft and not is_operator(actor):
            raise Conflict("Only a draft can be deleted; close the poll instead.", code="poll-not-draft")
        data = _event_data(poll, status="deleted")
        poll_id = poll.id
        Participation.objects.filter(poll_id=poll_id).delete()
        poll.delete()
        emit("poll.deleted", aggregate_id=str(poll_id), data=data)


def poll_open(*, poll: Poll, actor: Any) -> Poll:
    """``draft -> open`` (owner or operator) once the poll has at least two choices.

    The number of choices is asked from choice_service (the authority) before the transaction; when
    it cannot answer, the ``choice_count`` projection kept from choice events decides instead.
    """
    _require_manager(actor, poll)
    if not poll.is_draft:
        raise Conflict(f"Only a draft can be opened; this poll is {poll.status}.", code="poll-not-draft")
    authoritative = clients.choice_count(poll.id)
    with transaction.atomic():
        poll = _locked(poll)
        if not poll.is_draft:
            raise Conflict(f"Only a draft can be opened; this poll is {poll.status}.", code="poll-not-draft")
        if authoritative is not None and authoritative != poll.choice_count:
            poll.choice_count = authoritative
            poll.save(update_fields=["choice_count"])
        if poll.choice_count < MIN_CHOICES_TO_OPEN:
            raise Conflict(
                f"A poll needs at least {MIN_CHOICES_TO_OPEN} choices to open; it has {poll.choice_count}.",
                code="not-enough-choices",
            )
        now = timezone.now()
        if poll.closes_at is not None and poll.closes_at <= now:
            raise Conflict("closes_at has passed; move it into the future before opening.", code="closes-at-passed")
        poll.status = PollStatus.OPEN
        poll.opened_at = now
        poll.save(update_fields=["status", "opened_at", "updated_at"])
        emit("poll.opened", aggregate_id=str(poll.id), data=_event_data(poll))
    return poll


def _close(poll: Poll) -> Poll:
    poll.status = PollStatus.CLOSED
    poll.closed_at = timezone.now()
    poll.save(update_fields=["status", "closed_at", "updated_at"])
    emit("poll.closed", aggregate_id=str(poll.id), data=_event_data(poll))
    return poll


def poll_close(*, poll: Poll, actor: Any) -> Poll:
    """``open -> closed`` by the owner or an operator."""
    _require_manager(actor, poll)
    with transaction.atomic():
        poll = _locked(poll)
        if not poll.is_open:
            raise Conflict(f"Only an open poll can be closed; this poll is {poll.status}.", code="poll-not-open")
        return _close(poll)


def poll_close_expired(*, now: datetime | None = None) -> int:
    """Close every open poll whose ``closes_at`` has passed; one transaction per poll. Returns how many."""
    now = now or timezone.now()
    closed = 0
    for poll_id in list(polls_due_to_close(now=now).values_list("id", flat=True)):
        with transaction.atomic():
            poll = Poll.objects.select_for_update(skip_locked=True).filter(pk=poll_id).first()
            if poll is None or not poll.is_open or poll.closes_at is None or poll.closes_at > now:
                continue
            _close(poll)
            closed += 1
    if closed:
        logger.info("auto-closed polls", extra={"count": closed})
    return closed


# --- projections kept from other services' events -------------------------------------------------


def poll_choice_count_adjust(*, poll_id: Any, delta: int) -> None:
    """A choice was added (+1) or removed (-1) in choice_service."""
    with transaction.atomic():
        poll = Poll.objects.select_for_update().filter(pk=poll_id).first()
        if poll is None:
            return
        poll.choice_count = max(0, poll.choice_count + delta)
        poll.save(update_fields=["choice_count"])


def participation_record(*, poll_id: Any, voter_id: int) -> None:
    """``voter_id`` has a vote on ``poll_id`` (vote.cast)."""
    try:
        with transaction.atomic():
            Participation.objects.get_or_create(poll_id=poll_id, voter_id=voter_id)
    except IntegrityError:
        pass  # a concurrent delivery recorded it first


def participation_forget(*, poll_id: Any, voter_id: int) -> None:
    """``voter_id`` retracted their vote on ``poll_id`` (vote.retracted)."""
    with transaction.atomic():
        Participation.objects.filter(poll_id=poll_id, voter_id=voter_id).delete()
