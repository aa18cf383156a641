"""Writes of vote_service: replicas of polls and choices, the poll gate ("seal"), and votes.

Replicas are ordered by their owner's version (``servicekit.replicas``): an event, a fetch or a seal
is stored only if it is newer than what the replica holds, whatever arrives first.

The poll replica's row is the gate. A vote, change or retraction holds ``FOR SHARE`` on it in the
transaction that checks the poll is open and writes; polls_service's seal (``poll_replica_seal``, before
it commits a close or delete) takes ``FOR UPDATE``, so it waits for those transactions and every one
that starts after it sees the new state.

On PostgreSQL the hot path (``vote_cast``) is one statement: check both replicas, insert the vote
(the one-vote constraint decides a double vote) and its outbox row; it calls no other service while
the replicas are warm.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from django.db import IntegrityError, connection, transaction
from django.db.models import Subquery
from django.utils import timezone
from rest_framework.exceptions import NotFound

from servicekit import tracing, voter_policy
from servicekit.conf import servicekit_settings
from servicekit.db.reconnect import reopening_once
from servicekit.errors import Conflict, Problem, UnprocessableEntity
from servicekit.events import emit
from servicekit.events.event import Event
from servicekit.events.models import OutboxEvent
from servicekit.events.outbox import current_traceparent, request_relay
from servicekit.events.registry import get_registry
from servicekit.memo import Memo
from servicekit.principal import Principal
from servicekit.replicas import poll_is_open, poll_state, replica_apply, replica_apply_many, replica_get_or_fetch
from votes.clients import choices_client, polls_client
from votes.models import ChoiceReplica, PollReplica, Vote
from votes.results import results_invalidate_on_commit

# --- Replicas ------------------------------------------------------------------------------------


def poll_replica_state(data: dict[str, Any], event_type: str | None = None) -> dict[str, Any]:
    """The replica's fields from a poll event's data or an internal poll read: the shared ones and the
    voter policy (older producers send none: every signed-in user)."""
    return {**poll_state(data, event_type), "voter_policy": voter_policy.normalise(data.get("voter_policy"))}


def _poll_fetch(poll_id: uuid.UUID | str) -> dict[str, Any] | None:
    """polls_service's current state of a poll (``version`` and the replica's fields), or None."""
    data = polls_client().get_json(f"/internal/polls/{poll_id}/")
    if data is None:
        return None
    return {"version": int(data["version"]), **poll_replica_state(data)}


def _choice_fetch(choice_id: uuid.UUID | str) -> dict[str, Any] | None:
    data = choices_client().get_json(f"/internal/choices/{choice_id}/")
    if data is None:
        return None
    return {
        "version": int(data["version"]),
        "poll_id": uuid.UUID(str(data["poll_id"])),
        "position": int(data.get("position") or 0),
        "deleted": bool(data.get("deleted", False)),
    }


def poll_replica_apply(*, poll_id: uuid.UUID | str, version: int, state: dict[str, Any]) -> bool:
    """Store a poll's state (``poll_state(...)``) at ``version`` unless the replica holds that version or
    a newer one; results are invalidated after commit when it changed. True if stored."""
    changed = replica_apply(PollReplica, id=poll_id, version=version, **state)
    if changed:
        results_invalidate_on_commit(poll_id=poll_id)
    return changed


def choice_replica_apply(*, choice_id: uuid.UUID | str, version: int, poll_id: uuid.UUID | str, **fields: Any) -> bool:
    """Store a choice (``position``, ``deleted``) at ``version`` unless the replica holds that version or
    a newer one; the poll's results are invalidated after commit when it changed. True if stored."""
    changed = replica_apply(ChoiceReplica, id=choice_id, version=version, poll_id=uuid.UUID(str(poll_id)), **fields)
    if changed:
        results_invalidate_on_commit(poll_id=poll_id)
    return changed


def choice_replicas_warm(*, poll_id: uuid.UUID | str) -> int:
    """Store every choice of a poll as choice_service lists them (by version); returns how many it knows."""
    data = choices_client().get_json(f"/internal/polls/{poll_id}/choices/")
    if data is None:
        return 0
    items = data.get("choices", [])
    replica_apply_many(
        ChoiceReplica,
        [
            {
                "id": item["id"],
                "version": int(item["version"]),
                "poll_id": uuid.UUID(str(poll_id)),
                "position": int(item.get("position") or 0),
                "deleted": False,
            }
            for item in items
        ],
    )
    return len(items)


def poll_replica_get_or_fetch(*, poll_id: uuid.UUID | str, warm_choices: bool = True) -> PollReplica | None:
    """The replica of a poll; on a miss, fetched from polls_service and stored by version (and its
    choices from choice_service). None when the poll does not exist; an open circuit breaker raises
    ``ServiceUnavailable`` (503)."""
    fetched = False

    def fetch() -> dict[str, Any] | None:
        nonlocal fetched
        fetched = True
        return _poll_fetch(poll_id)

    replica = replica_get_or_fetch(PollReplica, id=poll_id, fetch=fetch)
    if replica is not None and fetched:
        if warm_choices:
            choice_replicas_warm(poll_id=poll_id)
        results_invalidate_on_commit(poll_id=poll_id)
    return replica


def poll_replica_fetch(*, poll_id: uuid.UUID | str) -> PollReplica | None:
    """Ask polls_service for a poll's current state, store it by version (a newer state already held
    wins) and return the replica. For a replica still ``draft`` on a vote: the poll may have opened a
    moment ago, its ``poll.opened`` not consumed yet. None when polls_service does not know the poll."""
    state = _poll_fetch(poll_id)
    if state is None:
        return None
    poll_replica_apply(poll_id=poll_id, version=state.pop("version"), state=state)
    return PollReplica.objects.filter(pk=poll_id).first()


def choice_replica_get_or_fetch(*, choice_id: uuid.UUID | str) -> ChoiceReplica | None:
    """The replica of a choice; on a miss, fetched from choice_service and stored by version. None when
    unknown there."""
    return replica_get_or_fetch(ChoiceReplica, id=choice_id, fetch=lambda: _choice_fetch(choice_id))


def poll_replica_seal(*, poll_id: uuid.UUID, version: int, state: dict[str, Any]) -> PollReplica:
    """polls_service's gate command: store a poll's state at ``version`` under the replica row's lock.

    ``FOR UPDATE`` waits for every vote, change or retraction in flight (they hold ``FOR SHARE``), so
    once this returns, no vote transaction that saw the old state can still commit, and every one that
    starts later sees the new state. Idempotent; an older version changes nothing. Returns the replica.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Row locks are not queued fairly: a new FOR SHARE joins the row's current sharers without
            # waiting behind a queued FOR UPDATE, so a stream of votes could starve the seal for as long
            # as it lasts. Table locks are queued in order: EXCLUSIVE (which plain reads pass) waits only
            # for the votes already in flight, and the votes arriving after it wait the few milliseconds
            # the seal takes, then see its state.
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {connection.ops.quote_name(PollReplica._meta.db_table)} IN EXCLUSIVE MODE")
        # On SQLite this is a plain read: its transactions take the write lock at BEGIN (IMMEDIATE).
        list(PollReplica.objects.select_for_update().filter(pk=poll_id).values_list("pk", flat=True))
        poll_replica_apply(poll_id=poll_id, version=version, state=state)
        return PollReplica.objects.get(pk=poll_id)


# --- Votes ---------------------------------------------------------------------------------------


def _poll_not_found() -> UnprocessableEntity:
    return UnprocessableEntity("The poll does not exist.", code="poll-not-found", errors={"poll": ["Unknown poll."]})


def _poll_not_open(detail: str = "The poll is not open for voting.") -> UnprocessableEntity:
    return UnprocessableEntity(detail, code="poll-not-open")


def _choice_not_in_poll() -> UnprocessableEntity:
    return UnprocessableEntity(
        "The choice does not belong to this poll.",
        code="choice-not-in-poll",
        errors={"choice": ["This choice is not one of the poll's choices."]},
    )


def _vote_event(vote: Vote) -> dict[str, Any]:
    return {
        "id": str(vote.id),
        "poll_id": str(vote.poll_id),
        "choice_id": str(vote.choice_id),
        "voter_id": vote.voter_id,
    }


class _Attempt(NamedTuple):
    """What one cast attempt saw: the poll replica (None: unknown here), the choice's poll (None:
    unknown here or deleted) and whether the vote was inserted."""

    status: str | None
    is_open: bool
    choice_poll: uuid.UUID | None
    inserted: bool


_POLL, _CHOICE, _VOTE, _OUTBOX = (
    connection.ops.quote_name(model._meta.db_table) for model in (PollReplica, ChoiceReplica, Vote, OutboxEvent)
)

# The whole vote on PostgreSQL, one statement (its own transaction in autocommit; one round trip):
# - ``poll`` reads the replica row FOR SHARE: a seal (FOR UPDATE) in progress makes it wait and then
#   see the sealed row; a seal that starts later waits until this vote has committed.
# - ``vote`` inserts only if the poll is open and the choice is one of its live choices; ON CONFLICT
#   on the one-vote constraint makes a double vote insert nothing (no exception, no extra lookup).
# - ``event`` inserts the outbox row (envelope built in Python) only for an inserted vote.
# - The result maps every refusal: unknown choice (fetch, retry), not open, wrong poll, already voted. The
#   statement runs only for a poll whose voter policy is settled (``_cast_attempts``).
_CAST_SQL = f"""
WITH poll AS MATERIALIZED (
    SELECT status, (status = 'open' AND (closes_at IS NULL OR closes_at > %(now)s)) AS is_open
    FROM {_POLL} WHERE id = %(poll_id)s FOR SHARE
), choice AS MATERIALIZED (
    SELECT poll_id FROM {_CHOICE} WHERE id = %(choice_id)s AND NOT deleted
), vote AS (
    INSERT INTO {_VOTE} (id, poll_id, choice_id, voter_id, version, created_at, updated_at)
    SELECT %(vote_id)s, %(poll_id)s, %(choice_id)s, %(voter_id)s, 1, %(now)s, %(now)s
    FROM poll, choice WHERE poll.is_open AND choice.poll_id = %(poll_id)s
    ON CONFLICT (poll_id, voter_id) DO NOTHING
    RETURNING id
), event AS (
    INSERT INTO {_OUTBOX} (event_id, event_type, aggregate_id, envelope, created_at, attempts, last_error)
    SELECT %(event_id)s, 'vote.cast', %(vote_id_text)s, %(envelope)s::jsonb, %(now)s, 0, ''
    FROM vote
)
SELECT (SELECT status FROM poll), COALESCE((SELECT is_open FROM poll), FALSE), (SELECT poll_id FROM choice),
       EXISTS (SELECT FROM vote)
"""


def _cast_event(vote: Vote, now: datetime, traceparent: str | None) -> Event:
    """The ``vote.cast`` envelope ``emit()`` would store, built before the statement that stores it."""
    data = _vote_event(vote)
    if servicekit_settings.EVENTS_VALIDATE:
        get_registry().validate_data("vote.cast", data)
    return Event(
        id=str(uuid.uuid4()),
        type="vote.cast",
        occurred_at=now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        producer=servicekit_settings.SERVICE_NAME,
        aggregate_id=data["id"],
        data=data,
        traceparent=traceparent,
        version=vote.version,
    )


def _execute_cast(params: dict[str, Any]) -> _Attempt:
    with connection.cursor() as cursor:
        cursor.execute(_CAST_SQL, params)
        return _Attempt(*cursor.fetchone())


def _cast_in_one_statement(vote: Vote, params: dict[str, Any]) -> _Attempt:
    attempt, again = reopening_once(lambda: _execute_cast(params))
    if again and not attempt.inserted and Vote.objects.filter(pk=vote.id).exists():
        # The first run committed before its connection broke; the second inserted nothing (one vote per voter),
        # and the vote's own id, chosen here, says the vote in place is this one.
        attempt = attempt._replace(inserted=True)
    if attempt.inserted:
        # Immediately in autocommit (the statement has committed); after the caller's commit otherwise.
        transaction.on_commit(request_relay)
        results_invalidate_on_commit(poll_id=vote.poll_id)
    return attempt


def _cast_with_the_orm(vote: Vote) -> _Attempt:
    """The same attempt for other databases (SQLite, the embedded defaults): one transaction. The row
    lock is a no-op on SQLite, whose transactions take the write lock at BEGIN (IMMEDIATE): it
    serialises them with every other writer, a seal included."""
    choice_poll = ChoiceReplica.objects.filter(pk=vote.choice_id, deleted=False).values("poll_id")[:1]
    with transaction.atomic():
        row = (
            PollReplica.objects.select_for_update()
            .filter(pk=vote.poll_id)
            .annotate(choice_poll=Subquery(choice_poll))
            .values_list("status", "closes_at", "choice_poll")
            .first()
        )
        if row is None:
            return _Attempt(None, False, None, False)
        status, closes_at, found = row
        is_open = poll_is_open(status=status, closes_at=closes_at, now=vote.created_at)
        if not is_open or found != vote.poll_id:
            return _Attempt(status, is_open, found, False)
        try:
            with transaction.atomic():
                vote.save(force_insert=True)
        except IntegrityError:
            if not Vote.objects.filter(poll_id=vote.poll_id, voter_id=vote.voter_id).exists():
                raise
            return _Attempt(status, is_open, found, False)
        emit("vote.cast", aggregate_id=str(vote.id), version=vote.version, data=_vote_event(vote))
        results_invalidate_on_commit(poll_id=vote.poll_id)
    return _Attempt(status, is_open, found, True)


# The voter policy of each poll seen open or closed: fixed from then on (only a draft's policy can change),
# so a process reads it once per poll and a warm vote reads nothing for it.
_settled_policies: Memo[uuid.UUID, dict[str, Any] | None] = Memo(4096)


class _PolicyRead(NamedTuple):
    known: bool  # the replica holds the poll
    settled: bool  # seen open or closed here: the policy is fixed (only a draft's policy can change)
    policy: dict[str, Any] | None


def _poll_policy(poll_id: uuid.UUID) -> _PolicyRead:
    """The voter policy (``servicekit.voter_policy``) of ``poll_id`` as this service's replica holds it."""
    if poll_id in _settled_policies:
        return _PolicyRead(True, True, _settled_policies[poll_id])
    # The first statement of a vote: a connection that died since its last use is reopened once.
    row, _ = reopening_once(PollReplica.objects.filter(pk=poll_id).values_list("status", "voter_policy").first)
    if row is None:
        return _PolicyRead(False, False, None)
    if row[0] == PollReplica.Status.DRAFT:
        return _PolicyRead(True, False, row[1])
    return _PolicyRead(True, True, _settled_policies.remember(poll_id, row[1]))


def _poll_status(poll_id: uuid.UUID) -> str | None:
    return PollReplica.objects.filter(pk=poll_id).values_list("status", flat=True).first()


def vote_cast(
    *, actor: Principal, poll_id: uuid.UUID, choice_id: uuid.UUID, claims: Mapping[str, Any] | None = None
) -> Vote:
    """Record the actor's vote; 409 if they already voted in this poll, 422 if the poll or choice forbid it,
    403 if the poll's voter policy does not admit the actor's token ``claims``.

    A replica miss (unknown poll or choice, or a poll still ``draft`` here) is fetched from its owner and
    stored by version, once each: a poll's before the vote's statement, a choice's after it found none.
    """
    now = timezone.now()
    vote = Vote(id=uuid.uuid4(), poll_id=poll_id, choice_id=choice_id, voter_id=actor.id)
    vote.created_at = vote.updated_at = now
    outbox_span = None
    if connection.vendor == "postgresql":
        # Tracing on: the outbox write is a span (the statement's database span nests in it) whose
        # context the envelope carries, as emit() does. Off: one flag test, no other work.
        if tracing.ENABLED:
            outbox_span = tracing.outbox_span("vote.cast")
            traceparent = tracing.traceparent_of(outbox_span)
        else:
            traceparent = current_traceparent()
        event = _cast_event(vote, now, traceparent)
        params = {
            "now": now,
            "poll_id": poll_id,
            "choice_id": choice_id,
            "vote_id": vote.id,
            "vote_id_text": event.aggregate_id,
            "voter_id": actor.id,
            "event_id": uuid.UUID(event.id),
            "envelope": json.dumps(event.envelope()),
        }

        def attempt() -> _Attempt:
            if outbox_span is None:
                return _cast_in_one_statement(vote, params)
            with tracing.activated(outbox_span):
                return _cast_in_one_statement(vote, params)

    else:

        def attempt() -> _Attempt:
            return _cast_with_the_orm(vote)

    try:
        return _cast_attempts(attempt, vote=vote, poll_id=poll_id, choice_id=choice_id, claims=claims or {})
    finally:
        if outbox_span is not None:
            outbox_span.end()


def _cast_attempts(
    attempt: Any, *, vote: Vote, poll_id: uuid.UUID, choice_id: uuid.UUID, claims: Mapping[str, Any]
) -> Vote:
    """Run ``attempt`` until the vote is in, fetching a missing replica once each; raise the refusal."""
    fetched: set[str] = set()
    while True:
        read = _poll_policy(poll_id)
        if not read.settled:
            # Unknown here or still a draft: ask polls_service before any attempt. An attempt now could see the
            # poll open (its poll.opened landing meanwhile) under a policy nobody checked against this voter.
            if "poll" in fetched:
                raise _poll_not_open() if read.known else _poll_not_found()
            fetched.add("poll")
            if read.known:
                replica = poll_replica_fetch(poll_id=poll_id)
            else:
                replica = poll_replica_get_or_fetch(poll_id=poll_id)
            if replica is None:
                raise _poll_not_found()
            continue
        refused = voter_policy.refusal(read.policy, claims)
        if refused:
            # The memo outlives a deletion: a deleted poll is "poll-not-found" to everyone, refused voters too.
            if _poll_status(poll_id) in (None, PollReplica.Status.DELETED):
                raise _poll_not_found()
            raise Problem(refused, status=403, code="voter-not-admitted")
        seen = attempt()
        if seen.inserted:
            vote._state.adding = False
            vote._state.db = connection.alias
            return vote
        if seen.status in (None, PollReplica.Status.DELETED):
            raise _poll_not_found()
        if not seen.is_open:
            raise _poll_not_open()
        if seen.choice_poll is None and "choice" not in fetched:
            fetched.add("choice")
            choice = choice_replica_get_or_fetch(choice_id=choice_id)
            if choice is None or choice.deleted or choice.poll_id != poll_id:
                raise _choice_not_in_poll()
            continue
        if seen.choice_poll != poll_id:
            raise _choice_not_in_poll()
        raise Conflict("You have already voted in this poll.", code="already-voted")


_POLL_FOR_SHARE_SQL = (
    f"SELECT status, (status = 'open' AND (closes_at IS NULL OR closes_at > %s)) FROM {_POLL} WHERE id = %s FOR SHARE"
)


def _lock_open_poll(*, poll_id: uuid.UUID, refused: str) -> None:
    """Inside the caller's transaction: hold ``FOR SHARE`` on the poll replica row (a seal waits for this
    transaction) and raise 422 unless the poll is open. SQLite serialises writers: a plain read there."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_POLL_FOR_SHARE_SQL, [now, poll_id])
            row = cursor.fetchone()
        status, is_open = row if row is not None else (None, False)
    else:
        poll = PollReplica.objects.filter(pk=poll_id).first()
        status = poll.status if poll is not None else None
        is_open = poll is not None and poll.is_open_at(now)
    if status is None or status == PollReplica.Status.DELETED:
        raise _poll_not_found()
    if not is_open:
        raise _poll_not_open(refused)


def _own_vote_for_update(*, actor: Principal, vote_id: uuid.UUID) -> Vote:
    vote = Vote.objects.select_for_update().filter(pk=vote_id, voter_id=actor.id).first()
    if vote is None:
        raise NotFound()
    return vote


def vote_change(*, actor: Principal, vote: Vote, choice_id: uuid.UUID) -> Vote:
    """Move the actor's vote to another choice of the same poll while the poll is open."""
    # A miss asks choice_service before the transaction: no call while the poll's row is held.
    choice = choice_replica_get_or_fetch(choice_id=choice_id)
    with transaction.atomic():
        _lock_open_poll(poll_id=vote.poll_id, refused="The poll is not open for voting.")
        locked = _own_vote_for_update(actor=actor, vote_id=vote.pk)
        if locked.choice_id == choice_id:
            return locked
        if choice is None or choice.deleted or choice.poll_id != locked.poll_id:
            raise _choice_not_in_poll()
        previous = locked.choice_id
        locked.choice_id = choice_id
        locked.version += 1
        locked.save(update_fields=["choice_id", "version", "updated_at"])
        emit(
            "vote.changed",
            aggregate_id=str(locked.id),
            version=locked.version,
            data={**_vote_event(locked), "previous_choice_id": str(previous)},
        )
        results_invalidate_on_commit(poll_id=locked.poll_id)
    return locked


def vote_retract(*, actor: Principal, vote: Vote) -> None:
    """Withdraw the actor's vote while the poll is open; they may vote again afterwards."""
    with transaction.atomic():
        _lock_open_poll(poll_id=vote.poll_id, refused="The poll is not open; votes can no longer be retracted.")
        locked = _own_vote_for_update(actor=actor, vote_id=vote.pk)
        data = _vote_event(locked)
        locked.delete()
        emit("vote.retracted", aggregate_id=data["id"], version=locked.version + 1, data=data)
        results_invalidate_on_commit(poll_id=vote.poll_id)
