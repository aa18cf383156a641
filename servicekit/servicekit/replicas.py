"""Replicas: a service's copy of another service's aggregates, ordered by version, never by clocks.

The owner of an aggregate increments its ``version`` in the same transaction as each change and sends
it with every event and internal read. A replica stores a state only if its version is newer than the
one it holds, so events applied twice, late or out of order, and fetches racing events, change
nothing. A service declares only its fields::

    from servicekit.replicas import PollReplicaBase, Replica

    class PollReplica(PollReplicaBase):            # owner_id, status, closes_at, version
        pass

    class VoteProjection(Replica):                 # id (the vote's), version
        poll_id = models.UUIDField(db_index=True)
        choice_id = models.UUIDField()
        deleted = models.BooleanField(default=False)

and applies changes and misses through this module::

    from servicekit.replicas import poll_state, replica_apply, replica_apply_many, replica_get_or_fetch

    replica_apply(PollReplica, id=event.aggregate_id, version=event.version, **poll_state(event.data, event.type))
    replica_apply_many(VoteProjection, [{"id": ..., "version": ..., "poll_id": ..., ...}, ...])
    poll = replica_get_or_fetch(PollReplica, id=poll_id, fetch=lambda: polls_client().get_json(...))

An aggregate that is gone for good (a retracted vote, whose id is never reused) is stored as a
tombstone at ``TOMBSTONE_VERSION``: nothing can overwrite it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from django.db import connections, models, router
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

# Larger than any real version: a tombstone stored at it is final.
TOMBSTONE_VERSION = 2**62

# Rows per statement in ``replica_apply_many`` (well under SQLite's 32,766 bound parameters).
_CHUNK = 500

M = TypeVar("M", bound="Replica")


class Replica(models.Model):
    """A copy of another service's aggregate: its id and the version of the state stored here."""

    id = models.UUIDField(primary_key=True)
    # The owner's version of the stored state; 0 = nothing known yet.
    version = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class PollReplicaBase(Replica):
    """What a service needs to know of a poll: owner, state and closing time (from ``poll.*`` events,
    polls_service's internal read, or its gate commands)."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        OPEN = "open"
        CLOSED = "closed"
        DELETED = "deleted"

    owner_id = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    closes_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"poll {self.id} ({self.status}, v{self.version})"

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT

    @property
    def is_deleted(self) -> bool:
        return self.status == self.Status.DELETED

    def is_open_at(self, now: datetime | None = None) -> bool:
        """Open for votes: status ``open`` and ``closes_at`` (if any) not reached yet."""
        return poll_is_open(status=self.status, closes_at=self.closes_at, now=now)


def poll_is_open(*, status: str, closes_at: datetime | None, now: datetime | None = None) -> bool:
    """Open for votes: status ``open`` and ``closes_at`` (if any) not reached yet."""
    if status != PollReplicaBase.Status.OPEN:
        return False
    return closes_at is None or closes_at > (now or timezone.now())


def as_datetime(value: Any) -> datetime | None:
    """A datetime from an ISO 8601 string (events and internal reads carry JSON), or None."""
    if value is None or isinstance(value, datetime):
        return value
    return parse_datetime(str(value))


def poll_state(data: dict[str, Any], event_type: str | None = None) -> dict[str, Any]:
    """The ``PollReplicaBase`` fields of a poll event's data or an internal poll read."""
    status = PollReplicaBase.Status.DELETED if event_type == "poll.deleted" else data["status"]
    return {"owner_id": int(data["owner_id"]), "status": status, "closes_at": as_datetime(data.get("closes_at"))}


def _columns(model: type[models.Model], names: Iterable[str]) -> list[models.Field[Any, Any]]:
    columns = []
    for name in names:
        field = model._meta.get_field(name)
        if not isinstance(field, models.Field) or field.column is None:  # a reverse relation: no column
            raise ValueError(f"{model.__name__}.{name} is not a column")
        columns.append(field)
    return columns


def replica_apply_many(model: type[Replica], rows: Iterable[dict[str, Any]], *, using: str | None = None) -> int:
    """Store each row (``id``, ``version`` and the model's fields) unless the replica already holds that
    version or a newer one; one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE version <`` statement per
    500 rows (PostgreSQL and SQLite alike). Rows of one id: the highest version wins. Every row must
    carry the same fields. Returns how many rows were inserted or changed.
    """
    newest: dict[uuid.UUID, dict[str, Any]] = {}
    for row in rows:
        key = uuid.UUID(str(row["id"]))
        if key not in newest or int(row["version"]) > int(newest[key]["version"]):
            newest[key] = {**row, "id": key, "version": int(row["version"])}
    if not newest:
        return 0
    alias = using or router.db_for_write(model)
    connection = connections[alias]
    names = list(next(iter(newest.values())))
    fields = _columns(model, names)
    table = connection.ops.quote_name(model._meta.db_table)
    quoted = [connection.ops.quote_name(f.column or f.name) for f in fields]  # column: checked by _columns
    version = connection.ops.quote_name("version")
    updates = ", ".join(f"{q} = EXCLUDED.{q}" for q, f in zip(quoted, fields, strict=True) if f.name != "id")
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    changed = 0
    items = list(newest.values())
    with connection.cursor() as cursor:
        for start in range(0, len(items), _CHUNK):
            chunk = items[start : start + _CHUNK]
            params: list[Any] = []
            for row in chunk:
                params += [f.get_db_prep_save(row[f.name], connection) for f in fields]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(quoted)}) VALUES {', '.join([placeholders] * len(chunk))}"
                f" ON CONFLICT ({connection.ops.quote_name('id')}) DO UPDATE SET {updates}"
                f" WHERE {table}.{version} < EXCLUDED.{version}",
                params,
            )
            changed += max(cursor.rowcount, 0)
    return changed


def replica_apply(model: type[Replica], *, id: Any, version: int, using: str | None = None, **fields: Any) -> bool:  # noqa: A002
    """Store one state at ``version`` unless the replica holds that version or a newer one; True if stored."""
    return replica_apply_many(model, [{"id": id, "version": version, **fields}], using=using) > 0


def replica_get_or_fetch(
    model: type[M],
    *,
    id: Any,
    fetch: Callable[[], dict[str, Any] | None],
    using: str | None = None,  # noqa: A002
) -> M | None:
    """The replica of ``id``; on a miss, ``fetch()`` asks the owner (a dict with ``version`` and the
    model's fields, or None when the owner does not know it) and the answer is stored by version (a
    concurrent event that is newer wins). None when the owner does not know the aggregate.
    Whatever ``fetch`` raises (e.g. ``ServiceUnavailable``) propagates.
    """
    manager = model._default_manager.using(using) if using else model._default_manager
    replica = manager.filter(pk=id).first()
    if replica is not None:
        return replica
    state = fetch()
    if state is None:
        return None
    replica_apply(model, id=id, using=using, **state)
    return manager.filter(pk=id).first()


def live_count(model: type[Replica], *, by: str) -> Coalesce:
    """An annotation: how many live (not ``deleted``) ``model`` rows have ``by`` equal to the outer row's
    primary key, as a subquery, so a list stays one query::

        Poll.objects.annotate(choice_count=live_count(ChoiceReplica, by="poll_id"))
    """
    live = (
        model._default_manager.filter(**{by: OuterRef("pk"), "deleted": False})
        .order_by()
        .values(by)
        .annotate(n=Count("*"))
        .values("n")
    )
    return Coalesce(Subquery(live, output_field=IntegerField()), Value(0))
