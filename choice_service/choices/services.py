"""Writes of choice_service. Each function is one transaction; events are emitted inside it (outbox)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from prometheus_client import Counter
from rest_framework.exceptions import NotFound, PermissionDenied

from choices.clients import polls_client, votes_client
from choices.models import MAX_CHOICES_PER_POLL, Choice, PollReplica, VoteProjection
from choices.selectors import can_manage_poll
from servicekit.errors import Conflict, UnprocessableEntity
from servicekit.events import emit
from servicekit.principal import Principal
from servicekit.replicas import TOMBSTONE_VERSION, poll_state, replica_apply, replica_apply_many, replica_get_or_fetch

logger = logging.getLogger(__name__)

TALLY_REPAIRS = Counter(
    "choices_tally_repairs_total",
    "Votes of the per-vote projection repaired by reconciliation against the vote ledger.",
    ["service"],
)

UNIQUE_TEXT_CONSTRAINT = "choice_text_unique_per_poll_ci"

# Votes per ledger page asked of vote_service (its maximum).
LEDGER_PAGE = 1000


# --- Poll replica --------------------------------------------------------------------------------


def _fetch_poll(poll_id: uuid.UUID | str) -> dict[str, Any] | None:
    """polls_service's current state of a poll (``version`` + replica fields), or None if it does not know it."""
    data = polls_client().get_json(f"/internal/polls/{poll_id}/")
    if data is None:
        return None
    return {"version": int(data["version"]), **poll_state(data)}


def poll_replica_get_or_fetch(*, poll_id: uuid.UUID) -> PollReplica | None:
    """The replica of a poll; on a miss, asks polls_service and stores the answer by version. None if the
    poll is unknown. An unreachable polls_service (or an open breaker) raises ``ServiceUnavailable`` (503)."""
    return replica_get_or_fetch(PollReplica, id=poll_id, fetch=lambda: _fetch_poll(poll_id))


def poll_replica_get_or_refetch_draft(*, poll_id: uuid.UUID) -> PollReplica | None:
    """The replica of a poll, re-fetched from polls_service (and stored by version) when it still holds a
    draft: the poll may have opened a moment ago, its event in flight, and readers other than the owner
    should see its choices at once. No call for any other state."""
    replica = PollReplica.objects.filter(pk=poll_id).first()
    if replica is None or not replica.is_draft:
        return replica
    state = _fetch_poll(poll_id)
    if state is None or not replica_apply(PollReplica, id=poll_id, **state):
        return replica
    return PollReplica.objects.filter(pk=poll_id).first()


def _forget_deleted_poll(poll_id: uuid.UUID | str) -> None:
    """A deleted poll's choices and votes go: the deletion is final (nothing newer can follow it)."""
    if PollReplica.objects.filter(pk=poll_id, status=PollReplica.Status.DELETED).exists():
        Choice.objects.filter(poll_id=poll_id).delete()
        VoteProjection.objects.filter(poll_id=poll_id).delete()


def poll_replica_apply(*, poll_id: uuid.UUID | str, version: int, state: dict[str, Any]) -> bool:
    """Store a poll's state (``poll_state(...)``) at ``version`` unless the replica holds a newer one (a
    ``poll.*`` event). A deletion removes the poll's choices and vote projection. True if stored."""
    stored = replica_apply(PollReplica, id=poll_id, version=version, **state)
    if state["status"] == PollReplica.Status.DELETED:
        _forget_deleted_poll(poll_id)
    return stored


@dataclass(frozen=True)
class PollFreeze:
    """The answer of the freeze command: the replica's state after it, and the poll's choice count."""

    poll_id: str
    version: int
    status: str
    choices: int


def poll_freeze(
    *,
    poll_id: uuid.UUID,
    version: int,
    owner_id: int,
    status: str,
    closes_at: datetime | None,
    min_choices: int | None = None,
) -> PollFreeze:
    """Apply a poll's new state, sent by polls_service before it commits, under the replica row lock.

    Choice create/update/delete lock the same row and require a draft, so once this returned a non-draft
    state none of them commits for the poll. Opening (``status="open"`` with ``min_choices``) with fewer
    choices than that raises ``Conflict`` (409 ``not-enough-choices``, ``choices: n``) and changes nothing.
    Idempotent: an older or repeated command changes nothing and answers the current state.
    """
    state = {"owner_id": owner_id, "status": status, "closes_at": closes_at}
    with transaction.atomic():
        replica = PollReplica.objects.select_for_update().filter(pk=poll_id).first()
        if replica is None:
            # Unknown here yet (its poll.created still in flight): the command's state is the newest known.
            replica_apply(PollReplica, id=poll_id, version=version, **state)
            replica = PollReplica.objects.select_for_update().get(pk=poll_id)
        choices = Choice.objects.filter(poll_id=poll_id).count()
        if status == PollReplica.Status.OPEN and min_choices is not None and choices < min_choices:
            raise Conflict(
                f"A poll needs at least {min_choices} choices to open; it has {choices}.",
                code="not-enough-choices",
                extensions={"code": "not-enough-choices", "choices": choices},
            )
        if poll_replica_apply(poll_id=poll_id, version=version, state=state):
            replica.refresh_from_db()
            choices = Choice.objects.filter(poll_id=poll_id).count()
    return PollFreeze(poll_id=str(poll_id), version=replica.version, status=replica.status, choices=choices)


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


def _poll_not_found() -> UnprocessableEntity:
    return UnprocessableEntity("The poll does not exist.", code="poll-not-found", errors={"poll": ["Unknown poll."]})


def choice_create(*, actor: Principal, poll_id: uuid.UUID, text: str, position: int | None = None) -> Choice:
    """Add a choice to a draft poll owned by the actor (or any poll, for an operator).

    The poll's replica row is locked while counting, so concurrent creates cannot pass the 20-choice cap
    and none commits after a freeze (``poll_freeze``) moved the poll out of draft.
    """
    if poll_replica_get_or_fetch(poll_id=poll_id) is None:
        raise _poll_not_found()
    try:
        with transaction.atomic():
            poll = PollReplica.objects.select_for_update().get(pk=poll_id)
            if poll.is_deleted:
                raise _poll_not_found()
            _check_can_change(actor=actor, poll=poll)
            siblings = Choice.objects.filter(poll_id=poll_id)
            stats = siblings.aggregate(top=Max("position"))
            if siblings.count() >= MAX_CHOICES_PER_POLL:
                raise Conflict(f"A poll has at most {MAX_CHOICES_PER_POLL} choices.", code="choice-limit-reached")
            if position is None:
                position = 0 if stats["top"] is None else stats["top"] + 1
            choice = Choice.objects.create(poll_id=poll_id, text=text, position=position)
            emit("choice.created", aggregate_id=str(choice.id), version=choice.version, data=_event_data(choice))
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
                locked.version += 1
                locked.save(update_fields=[*changed, "version", "updated_at"])
                emit("choice.updated", aggregate_id=str(locked.id), version=locked.version, data=_event_data(locked))
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
        version = locked.version + 1
        locked.delete()
        emit("choice.deleted", aggregate_id=data["id"], version=version, data=data)


# --- Vote projection and reconciliation ----------------------------------------------------------


def vote_projection_apply(*, rows: Iterable[dict[str, Any]]) -> int:
    """Store votes (``id``, ``version``, ``poll_id``, ``choice_id``, ``deleted``; same keys in every row)
    by version in one statement per 500 rows: applied twice, late or out of order, they change nothing.
    A vote for a choice unknown here is recorded too. Returns how many rows were inserted or changed."""
    return replica_apply_many(VoteProjection, rows)


@dataclass
class ReconcileReport:
    """What reconciling one poll found: ledger votes seen and projection rows repaired."""

    poll_id: str
    checked: int = 0  # votes in the ledger
    inserted: int = 0  # ledger votes the projection did not have
    updated: int = 0  # ledger votes the projection had at an older version
    tombstoned: int = 0  # live projection rows the ledger no longer has (retracted)
    skipped: bool = False

    @property
    def repaired(self) -> int:
        return self.inserted + self.updated + self.tombstoned


class LedgerError(Exception):
    """vote_service's ledger pages do not advance (a contract violation): the poll is skipped."""


def _ledger_votes(poll_id: uuid.UUID | str) -> list[dict[str, Any]] | None:
    """Every vote of the poll in vote_service's ledger (``id``, ``choice_id``, ``version``), page by page;
    None when vote_service does not know the poll."""
    votes: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": LEDGER_PAGE}
        if after is not None:
            params["after"] = after
        page = votes_client().get_json(f"/internal/polls/{poll_id}/votes/", params=params)
        if page is None:
            return None
        votes += page.get("votes") or []
        following = page.get("next")
        if following is None:
            return votes
        if following == after or not page.get("votes"):
            raise LedgerError(f"ledger page after {after!r} of poll {poll_id} does not advance")
        after = str(following)


def tallies_reconcile(*, poll_id: uuid.UUID | str) -> ReconcileReport:
    """Make the poll's vote projection equal vote_service's ledger, vote id by vote id; log and count repairs.

    Set-wise, so it can run at any moment: (1) read the projection, (2) then every ledger page, (3) store
    each ledger vote by version (an event already applied that is newer wins) and tombstone, at
    ``TOMBSTONE_VERSION``, every live row of (1) missing from the ledger: vote ids are never reused and
    a projection row exists only after its vote committed, so a row the later ledger read lacks was
    retracted. Skipped (nothing changed) when vote_service does not know the poll.
    """
    report = ReconcileReport(poll_id=str(poll_id))
    projection = {
        row["id"]: row
        for row in VoteProjection.objects.filter(poll_id=poll_id).values("id", "version", "deleted", "choice_id")
    }
    ledger = _ledger_votes(poll_id)
    if ledger is None:
        report.skipped = True
        return report
    report.checked = len(ledger)
    missing, stale = [], []
    in_ledger = set()
    for vote in ledger:
        vote_id = uuid.UUID(str(vote["id"]))
        in_ledger.add(vote_id)
        row = {
            "id": vote_id,
            "version": int(vote["version"]),
            "poll_id": poll_id,
            "choice_id": vote["choice_id"],
            "deleted": False,
        }
        known = projection.get(vote_id)
        if known is None:
            missing.append(row)
        elif known["version"] < row["version"]:
            stale.append(row)
    tombstones = [
        {**row, "poll_id": poll_id, "version": TOMBSTONE_VERSION, "deleted": True}
        for vote_id, row in projection.items()
        if not row["deleted"] and vote_id not in in_ledger
    ]
    with transaction.atomic():
        report.inserted = vote_projection_apply(rows=missing)
        report.updated = vote_projection_apply(rows=stale)
        report.tombstoned = vote_projection_apply(rows=tombstones)
    if report.repaired:
        logger.warning(
            "votes repaired",
            extra={
                "poll_id": str(poll_id),
                "inserted": report.inserted,
                "updated": report.updated,
                "tombstoned": report.tombstoned,
            },
        )
        try:
            TALLY_REPAIRS.labels(service="choices").inc(report.repaired)
        except Exception:  # noqa: BLE001 - observability never fails the repair
            logger.exception("could not count a tally repair")
    return report


def tallies_reconcile_all() -> list[ReconcileReport]:
    """Reconcile every poll that can have votes (open or closed); drop leftover votes of deleted polls."""
    deleted = PollReplica.objects.filter(status=PollReplica.Status.DELETED).values("pk")
    VoteProjection.objects.filter(poll_id__in=deleted).delete()  # votes whose events followed the deletion
    poll_ids = list(
        PollReplica.objects.filter(status__in=[PollReplica.Status.OPEN, PollReplica.Status.CLOSED])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    reports = []
    for poll_id in poll_ids:
        try:
            reports.append(tallies_reconcile(poll_id=poll_id))
        except Exception:  # noqa: BLE001 - e.g. vote_service down: the next run tries again
            logger.exception("reconciliation failed", extra={"poll_id": str(poll_id)})
            reports.append(ReconcileReport(poll_id=str(poll_id), skipped=True))
    return reports
