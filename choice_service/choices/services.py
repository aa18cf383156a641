"""Writes of choice_service. Each function is one transaction; events are emitted inside it (outbox)."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from prometheus_client import Counter
from rest_framework.exceptions import NotFound, PermissionDenied

from choices.clients import polls_client, votes_client
from choices.models import MAX_CHOICES_PER_POLL, Choice, PollReplica
from choices.selectors import can_manage_poll
from servicekit.errors import Conflict, UnprocessableEntity
from servicekit.events import emit
from servicekit.principal import Principal

logger = logging.getLogger(__name__)

TALLY_REPAIRS = Counter(
    "choices_tally_repairs_total",
    "Choice vote tallies corrected by reconciliation against the vote ledger.",
    ["service"],
)

UNIQUE_TEXT_CONSTRAINT = "choice_text_unique_per_poll_ci"


# --- Poll replica --------------------------------------------------------------------------------


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_datetime(str(value))


def poll_replica_ensure(*, poll_id: uuid.UUID) -> PollReplica | None:
    """The replica of a poll; on a miss, asks polls_service and stores the answer. None if the poll is unknown.

    An open circuit breaker raises ``ServiceUnavailable`` (503) from the client.
    """
    replica = PollReplica.objects.filter(pk=poll_id).first()
    if replica is not None:
        return replica
    data = polls_client().get_json(f"/internal/polls/{poll_id}/")
    if data is None:
        return None
    replica, _ = PollReplica.objects.get_or_create(
        pk=poll_id,
        defaults={
            "owner_id": int(data["owner_id"]),
            "status": data["status"],
            "closes_at": _as_datetime(data.get("closes_at")),
            # The fetched state is current: events that happened before now must not roll it back.
            "source_time": timezone.now(),
        },
    )
    return replica


def poll_replica_refresh_if_draft(*, poll_id: uuid.UUID) -> PollReplica | None:
    """Re-read a poll the replica still holds as a draft (it may have opened a moment ago, its event in
    flight) so readers other than the owner see its choices at once. No call for any other state."""
    replica = PollReplica.objects.filter(pk=poll_id).first()
    if replica is None or not replica.is_draft:
        return replica
    data = polls_client().get_json(f"/internal/polls/{poll_id}/")
    if data is None or data.get("status") == PollReplica.Status.DRAFT:
        return replica
    with transaction.atomic():
        locked = PollReplica.objects.select_for_update().get(pk=poll_id)
        if locked.is_draft:
            locked.status = data["status"]
            locked.closes_at = _as_datetime(data.get("closes_at"))
            locked.source_time = timezone.now()
            locked.save(update_fields=["status", "closes_at", "source_time", "updated_at"])
    return locked


def poll_replica_apply(*, event_type: str, data: dict[str, Any], occurred_at: Any) -> PollReplica | None:
    """Apply a ``poll.*`` event to the replica; an event older than the stored state changes nothing.

    ``poll.deleted`` removes the poll's choices and leaves a tombstone so a late event cannot revive it.
    """
    occurred = _as_datetime(occurred_at) or timezone.now()
    poll_id = uuid.UUID(str(data["id"]))
    status = PollReplica.Status.DELETED if event_type == "poll.deleted" else data["status"]
    with transaction.atomic():
        replica = PollReplica.objects.select_for_update().filter(pk=poll_id).first()
        if replica is None:
            replica = PollReplica(pk=poll_id)
        elif replica.is_deleted or (replica.source_time is not None and occurred < replica.source_time):
            return replica
        replica.owner_id = int(data["owner_id"])
        replica.status = status
        replica.closes_at = _as_datetime(data.get("closes_at"))
        replica.source_time = occurred
        replica.save()
        if status == PollReplica.Status.DELETED:
            Choice.objects.filter(poll_id=poll_id).delete()
    return replica


# --- Choices -------------------------------------------------------------------------------------


def _event_data(choice: Choice) -> dict[str, Any]:
    return {"id": str(choice.id), "poll_id": str(choice.poll_id), "text": choice.text, "position": choice.position}


def _check_can_change(*, actor: Principal, poll: PollReplica) -> None:
    if not can_manage_poll(actor=actor, poll=poll):
        raise PermissionDenied("Only the poll's owner or an operator may change its choices.")
    if not poll.is_draft:
        raise Conflict("Choices can only be changed while the poll is a draft.", code="poll-not-draft")


def _duplicate_text(exc: IntegrityError) -> bool:
    """Whether an insert/update failed on the case-insensitive text constraint (PostgreSQL names it in
    the error's diagnostics; SQLite, of the embedded development setup, in the message)."""
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
    if constraint is not None:
        return constraint == UNIQUE_TEXT_CONSTRAINT
    return UNIQUE_TEXT_CONSTRAINT in str(exc)


def _text_taken() -> Conflict:
    return Conflict(
        "This poll already has a choice with this text (case-insensitive).",
        code="choice-text-taken",
        errors={"text": ["This poll already has a choice with this text."]},
    )


def choice_create(*, actor: Principal, poll_id: uuid.UUID, text: str, position: int | None = None) -> Choice:
    """Add a choice to a draft poll owned by the actor (or any poll, for an operator).

    The poll's replica row is locked while counting, so concurrent creates cannot pass the 20-choice cap.
    """
    if poll_replica_ensure(poll_id=poll_id) is None:
        raise UnprocessableEntity("The poll does not exist.", code="poll-not-found", errors={"poll": ["Unknown poll."]})
    try:
        with transaction.atomic():
            poll = PollReplica.objects.select_for_update().get(pk=poll_id)
            if poll.is_deleted:
                raise UnprocessableEntity(
                    "The poll does not exist.", code="poll-not-found", errors={"poll": ["Unknown poll."]}
                )
            _check_can_change(actor=actor, poll=poll)
            siblings = Choice.objects.filter(poll_id=poll_id)
            stats = siblings.aggregate(top=Max("position"))
            if siblings.count() >= MAX_CHOICES_PER_POLL:
                raise Conflict(f"A poll has at most {MAX_CHOICES_PER_POLL} choices.", code="choice-limit-reached")
            if position is None:
                position = 0 if stats["top"] is None else stats["top"] + 1
            choice = Choice.objects.create(poll_id=poll_id, text=text, position=position)
            emit("choice.created", aggregate_id=str(choice.id), data=_event_data(choice))
    except IntegrityError as exc:
        if _duplicate_text(exc):
            raise _text_taken() from exc
        raise
    return choice


def choice_update(*, actor: Principal, choice: Choice, text: str | None = None, position: int | None = None) -> Choice:
    """Edit a choice's text and/or position (reordering) while its poll is a draft."""
    try:
        with transaction.atomic():
            poll = PollReplica.objects.select_for_update().filter(pk=choice.poll_id).first()
            locked = Choice.objects.select_for_update().filter(pk=choice.pk).first()
            if poll is None or locked is None or poll.is_deleted:
                raise NotFound()
            _check_can_change(actor=actor, poll=poll)
            changed = []
            if text is not None and text != locked.text:
                locked.text = text
                changed.append("text")
            if position is not None and position != locked.position:
                locked.position = position
                changed.append("position")
            if changed:
                locked.save(update_fields=[*changed, "updated_at"])
                emit("choice.updated", aggregate_id=str(locked.id), data=_event_data(locked))
    except IntegrityError as exc:
        if _duplicate_text(exc):
            raise _text_taken() from exc
        raise
    return locked


def choice_delete(*, actor: Principal, choice: Choice) -> None:
    """Remove a choice while its poll is a draft."""
    with transaction.atomic():
        poll = PollReplica.objects.select_for_update().filter(pk=choice.poll_id).first()
        locked = Choice.objects.select_for_update().filter(pk=choice.pk).first()
        if poll is None or locked is None or poll.is_deleted:
            raise NotFound()
        _check_can_change(actor=actor, poll=poll)
        data = _event_data(locked)
        locked.delete()
        emit("choice.deleted", aggregate_id=data["id"], data=data)


# --- Tallies -------------------------------------------------------------------------------------


def choice_tally_apply(*, choice_id: uuid.UUID | str, delta: int) -> bool:
    """Move one choice's tally by ``delta`` in the database (``F()``, no read-modify-write race).

    Idempotency comes from the event inbox the caller runs in. A tally never goes below zero: the check
    constraint fails the handler, which the framework retries (e.g. a retraction overtaking its cast).
    Returns False when the choice is unknown here.
    """
    updated = Choice.objects.filter(pk=choice_id).update(votes=F("votes") + delta)
    if not updated:
        logger.warning("tally event for unknown choice", extra={"choice_id": str(choice_id), "delta": delta})
    return bool(updated)


@dataclass
class ReconcileReport:
    poll_id: str
    checked: int = 0
    repaired: dict[str, tuple[int, int]] = field(default_factory=dict)  # choice id -> (was, now)
    skipped: bool = False


def _ledger_counts(poll_id: uuid.UUID | str) -> dict[str, int] | None:
    data = votes_client().get_json(f"/internal/polls/{poll_id}/counts/")
    if data is None:
        return None
    return {str(key): int(value) for key, value in (data.get("counts") or {}).items()}


def _tallies(poll_id: uuid.UUID | str) -> dict[str, int]:
    return {str(pk): votes for pk, votes in Choice.objects.filter(poll_id=poll_id).values_list("pk", "votes")}


@dataclass
class Observation:
    """The ledger counts and the local tallies of one poll, read at one moment."""

    counts: dict[str, int] | None
    tallies: dict[str, int]


def _observe(poll_id: uuid.UUID | str) -> Observation:
    return Observation(counts=_ledger_counts(poll_id), tallies=_tallies(poll_id))


def tallies_reconcile(
    *, poll_id: uuid.UUID | str, settle_seconds: float = 0.0, earlier: Observation | None = None
) -> ReconcileReport:
    """Make every tally of a poll equal the vote ledger's count in vote_service; log and count each repair.

    A vote committed in vote_service whose event is still on its way would look like drift. Given an
    ``earlier`` observation (or ``settle_seconds`` to take one and wait), only a difference present,
    unchanged, in both readings is repaired (the periodic task does this); without either, every
    difference is repaired at once.
    """
    report = ReconcileReport(poll_id=str(poll_id))
    if earlier is None and settle_seconds > 0:
        earlier = _observe(poll_id)
        time.sleep(settle_seconds)
    counts = _ledger_counts(poll_id)
    if counts is None or (earlier is not None and earlier.counts is None):
        report.skipped = True
        return report
    with transaction.atomic():
        for choice in Choice.objects.select_for_update().filter(poll_id=poll_id).order_by("pk"):
            report.checked += 1
            key = str(choice.pk)
            expected = counts.get(key, 0)
            if choice.votes == expected:
                continue
            if earlier is not None and (
                earlier.tallies.get(key) != choice.votes or earlier.counts.get(key, 0) != expected
            ):
                continue  # still moving: events in flight
            report.repaired[key] = (choice.votes, expected)
            logger.warning(
                "tally repaired",
                extra={"poll_id": str(poll_id), "choice_id": key, "was": choice.votes, "now": expected},
            )
            choice.votes = expected
            choice.save(update_fields=["votes"])
            try:
                TALLY_REPAIRS.labels(service="choices").inc()
            except Exception:  # noqa: BLE001 - observability never fails the repair
                logger.exception("could not count a tally repair")
    return report


def tallies_reconcile_all(*, settle_seconds: float = 0.0) -> list[ReconcileReport]:
    """Reconcile every poll that can have votes (open or closed); one settle wait for all of them."""
    poll_ids = list(
        PollReplica.objects.filter(status__in=[PollReplica.Status.OPEN, PollReplica.Status.CLOSED]).values_list(
            "pk", flat=True
        )
    )
    earlier: dict[Any, Observation] = {}
    if settle_seconds > 0:
        for poll_id in poll_ids:
            try:
                earlier[poll_id] = _observe(poll_id)
            except Exception:  # noqa: BLE001 - one failing poll must not stop the others
                logger.exception("reconciliation failed", extra={"poll_id": str(poll_id)})
        time.sleep(settle_seconds)
    reports = []
    for poll_id in poll_ids:
        if settle_seconds > 0 and poll_id not in earlier:
            reports.append(ReconcileReport(poll_id=str(poll_id), skipped=True))
            continue
        try:
            reports.append(tallies_reconcile(poll_id=poll_id, earlier=earlier.get(poll_id)))
        except Exception:  # noqa: BLE001 - e.g. vote_service down: the next run tries again
            logger.exception("reconciliation failed", extra={"poll_id": str(poll_id)})
            reports.append(ReconcileReport(poll_id=str(poll_id), skipped=True))
    return reports
