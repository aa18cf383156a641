"""Writes of polls: every change runs in one transaction together with the event that announces it.

The rules live here (views and tasks call these functions and never re-implement them):

- anyone authenticated creates a poll (always ``draft``, owned by the caller);
- only the owner or an operator changes a poll; question, description and ``closes_at`` only while draft;
- ``draft -> open`` needs at least two choices (choice_service counts them) and a ``closes_at`` still
  in the future;
- ``open -> closed`` by the owner or an operator, or by the auto-close task once ``closes_at`` passed;
- a draft may be deleted by its owner; an operator may delete any poll.

Every change increments ``Poll.version`` in its transaction and its event carries the new version.
Changes that move a gate (open: choice_service freezes the poll's choices; close, auto-close and
deleting a non-draft: vote_service seals the poll) call that service with the new version while
holding the poll's row lock, before committing (``_gated``); if the gate cannot be reached nothing
changes (503). Should the commit itself fail after the gate moved, ``_compensate`` moves it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from polls import clients
from polls.models import MIN_CHOICES_TO_OPEN, ChoiceReplica, Poll, PollStatus, VoteReplica
from polls.selectors import polls_due_to_close
from servicekit import audit
from servicekit.errors import Conflict, Problem, UnprocessableEntity
from servicekit.events import Event, emit
from servicekit.permissions import can_manage, is_operator, is_principal
from servicekit.replicas import TOMBSTONE_VERSION, replica_apply_many

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = ("question", "description", "closes_at", "voter_policy")


def _event_data(poll: Poll, *, status: str | None = None) -> dict[str, Any]:
    return {
        "id": str(poll.id),
        "owner_id": poll.owner_id,
        "status": status or poll.status,
        "closes_at": poll.closes_at,
        "question": poll.question,
        "voter_policy": poll.voter_policy,
    }


def _audit_operator(actor: Any, poll: Poll, *, before: str, after: str) -> None:
    """An operator changed a poll's state (theirs or anyone's): a ``poll.state_changed`` audit entry."""
    if is_operator(actor):
        audit.record(
            "poll.state_changed",
            actor=actor,
            outcome=audit.SUCCESS,
            detail={"poll": str(poll.id), "owner_id": poll.owner_id, "from": str(before), "to": str(after)},
        )


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


def poll_create(
    *,
    actor: Any,
    question: str,
    description: str = "",
    closes_at: datetime | None = None,
    voter_policy: dict[str, Any] | None = None,
) -> Poll:
    """A new draft poll owned by ``actor`` (version 1), open to the voters ``voter_policy`` admits."""
    if not is_principal(actor):
        raise PermissionDenied("Sign in to create a poll.")
    _validate_closes_at(closes_at)
    with transaction.atomic():
        poll = Poll.objects.create(
            question=question,
            description=description,
            closes_at=closes_at,
            voter_policy=voter_policy,
            owner_id=actor.id,
            owner_username=actor.username,
            status=PollStatus.DRAFT,
        )
        emit("poll.created", aggregate_id=str(poll.id), version=poll.version, data=_event_data(poll))
    return poll


def poll_update(*, poll: Poll, actor: Any, data: dict[str, Any]) -> Poll:
    """Change question, description, closes_at and/or voter_policy of a draft (other keys are ignored)."""
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
        poll.version += 1
        poll.save(update_fields=[*changes, "version", "updated_at"])
        emit("poll.updated", aggregate_id=str(poll.id), version=poll.version, data=_event_data(poll))
    return poll


Gate = Callable[[Poll], Any]


def _gated(
    poll_id: Any, *, change: Callable[[Poll], Poll | None], gate: Gate, restore: Gate, skip_locked: bool = False
) -> Poll | None:
    """Run ``change`` on the locked poll and move ``gate`` to its result, then commit; one transaction.

    ``change`` validates, increments the version, writes and emits (or returns None: nothing to do);
    ``gate`` is called with the changed poll last, still holding the row lock, so the gate moves to
    exactly the version that commits. Whatever ``gate`` raises rolls everything back. If the commit
    fails after the gate moved, ``_compensate`` moves it back with ``restore``. With ``skip_locked``,
    a poll locked by someone else (or gone) is skipped (None).
    """
    moved_from: int | None = None
    try:
        with transaction.atomic(durable=True):
            locked = Poll.objects.select_for_update(skip_locked=skip_locked).filter(pk=poll_id).first()
            if locked is None:
                if skip_locked:
                    return None
                raise Conflict("The poll no longer exists.", code="poll-gone")
            version = locked.version
            changed = change(locked)
            if changed is None:
                return None
            gate(changed)
            moved_from = version
    except Exception:
        if moved_from is not None:
            _compensate(poll_id, old_version=moved_from, restore=restore)
        raise
    return changed


def _compensate(poll_id: Any, *, old_version: int, restore: Gate) -> None:
    """The commit failed after a gate moved to ``old_version + 1``: move it back.

    If the poll (re-read) is still at ``old_version``, it moves to ``old_version + 2`` with its state
    unchanged (``poll.updated``), and then that state is sent to the gate, which applies it as newer.
    When the poll moved on (the commit did happen) or any of this fails, the gate is left as it is:
    sealed or frozen, the safe direction.
    """
    try:
        with transaction.atomic(durable=True):
            poll = Poll.objects.select_for_update().filter(pk=poll_id).first()
            if poll is None or poll.version != old_version:
                return
            poll.version = old_version + 2
            poll.save(update_fields=["version", "updated_at"])
            emit("poll.updated", aggregate_id=str(poll.id), version=poll.version, data=_event_data(poll))
        restore(poll)
    except Exception as exc:
        logger.error(
            "gate left sealed/frozen: compensation after a failed commit failed",
            extra={"poll": str(poll_id), "version": old_version + 1, "error": repr(exc)[:300]},
        )
    else:
        logger.warning("gate moved back after a failed commit", extra={"poll": str(poll_id), "version": poll.version})


def poll_delete(*, poll: Poll, actor: Any) -> None:
    """Delete a draft (owner or operator); an operator may delete a poll in any state.

    Deleting a non-draft first seals it in vote_service (``deleted`` at version + 1)."""
    _require_manager(actor, poll)

    def delete(locked: Poll) -> Poll:
        if not locked.is_draft and not is_operator(actor):
            raise Conflict("Only a draft can be deleted; close the poll instead.", code="poll-not-draft")
        data = _event_data(locked, status="deleted")
        gated = not locked.is_draft
        locked.version += 1
        emit("poll.deleted", aggregate_id=str(locked.id), version=locked.version, data=data)
        VoteReplica.objects.filter(poll_id=locked.id).delete()
        ChoiceReplica.objects.filter(poll_id=locked.id).delete()
        Poll.objects.filter(pk=locked.pk).delete()
        return locked if gated else None

    def seal(deleted: Poll) -> None:
        clients.votes_gate(deleted, status="deleted")

    _gated(poll.pk, change=delete, gate=seal, restore=clients.votes_gate)
    _audit_operator(actor, poll, before=poll.status, after="deleted")


def poll_open(*, poll: Poll, actor: Any) -> Poll:
    """``draft -> open`` (owner or operator): choice_service freezes the poll's choices before the
    commit and refuses (409) unless it holds at least ``MIN_CHOICES_TO_OPEN`` of them."""
    _require_manager(actor, poll)
    if not poll.is_draft:
        raise Conflict(f"Only a draft can be opened; this poll is {poll.status}.", code="poll-not-draft")

    def open_(locked: Poll) -> Poll:
        if not locked.is_draft:
            raise Conflict(f"Only a draft can be opened; this poll is {locked.status}.", code="poll-not-draft")
        now = timezone.now()
        if locked.closes_at is not None and locked.closes_at <= now:
            raise Conflict("closes_at has passed; move it into the future before opening.", code="closes-at-passed")
        locked.status = PollStatus.OPEN
        locked.opened_at = now
        locked.version += 1
        locked.save(update_fields=["status", "opened_at", "version", "updated_at"])
        emit("poll.opened", aggregate_id=str(locked.id), version=locked.version, data=_event_data(locked))
        return locked

    def freeze(opened: Poll) -> None:
        clients.choices_gate(opened, min_choices=MIN_CHOICES_TO_OPEN)

    opened = _gated(poll.pk, change=open_, gate=freeze, restore=clients.choices_gate)
    _audit_operator(actor, opened or poll, before=PollStatus.DRAFT, after=PollStatus.OPEN)
    return opened


def _close(poll: Poll) -> Poll:
    poll.status = PollStatus.CLOSED
    poll.closed_at = timezone.now()
    poll.version += 1
    poll.save(update_fields=["status", "closed_at", "version", "updated_at"])
    emit("poll.closed", aggregate_id=str(poll.id), version=poll.version, data=_event_data(poll))
    return poll


def poll_close(*, poll: Poll, actor: Any) -> Poll:
    """``open -> closed`` by the owner or an operator; vote_service seals the poll before the commit."""
    _require_manager(actor, poll)

    def close(locked: Poll) -> Poll:
        if not locked.is_open:
            raise Conflict(f"Only an open poll can be closed; this poll is {locked.status}.", code="poll-not-open")
        return _close(locked)

    before = poll.status
    closed = _gated(poll.pk, change=close, gate=clients.votes_gate, restore=clients.votes_gate)
    _audit_operator(actor, closed or poll, before=before, after=PollStatus.CLOSED)
    return closed


def poll_close_expired(*, now: datetime | None = None) -> int:
    """Close every open poll whose ``closes_at`` has passed; one transaction per poll. Returns how many.

    A poll vote_service cannot seal right now stays open (logged) until the next run."""
    now = now or timezone.now()

    def close_if_due(locked: Poll) -> Poll | None:
        if not locked.is_open or locked.closes_at is None or locked.closes_at > now:
            return None
        return _close(locked)

    closed = 0
    for poll_id in list(polls_due_to_close(now=now).values_list("id", flat=True)):
        try:
            poll = _gated(
                poll_id, change=close_if_due, gate=clients.votes_gate, restore=clients.votes_gate, skip_locked=True
            )
        except Problem as exc:
            logger.warning(
                "auto-close skipped: vote_service could not seal the poll",
                extra={"poll": str(poll_id), "status": exc.status_code, "error": str(exc.detail)[:300]},
            )
            continue
        closed += poll is not None
    if closed:
        logger.info("auto-closed polls", extra={"count": closed})
    return closed


# --- projections kept from other services' events (by version: order and repeats change nothing) ------


def _version(event: Event, *, final: bool = False) -> int:
    """The event's version; an event without one (an older producer) counts as the first version, or,
    for the end of an aggregate whose id is never reused (``final``), as a tombstone."""
    if event.version is not None:
        return int(event.version)
    return TOMBSTONE_VERSION if final else 1


def vote_replicas_apply(events: Iterable[Event]) -> int:
    """vote.cast / vote.retracted: one row per vote id, a retraction stored as ``deleted``; one statement."""
    rows = [
        {
            "id": event.data["id"],
            "version": _version(event, final=event.type == "vote.retracted"),
            "poll_id": event.data["poll_id"],
            "voter_id": int(event.data["voter_id"]),
            "deleted": event.type == "vote.retracted",
        }
        for event in events
    ]
    return replica_apply_many(VoteReplica, rows)


def choice_replicas_apply(events: Iterable[Event]) -> int:
    """choice.created / updated / deleted: one row per choice id, a deletion stored as ``deleted``."""
    rows = [
        {
            "id": event.data["id"],
            "version": _version(event, final=event.type == "choice.deleted"),
            "poll_id": event.data["poll_id"],
            "deleted": event.type == "choice.deleted",
        }
        for event in events
    ]
    return replica_apply_many(ChoiceReplica, rows)
