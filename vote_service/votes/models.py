"""The vote ledger (one vote per user per poll, decided by the database) and the replicas it checks against."""

from __future__ import annotations

import uuid

from django.db import models


class Vote(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    poll_id = models.UUIDField()
    choice_id = models.UUIDField()
    voter_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "id")
        constraints = [
            # A race of two requests cannot double-vote: the second insert fails here (mapped to 409).
            models.UniqueConstraint(fields=("poll_id", "voter_id"), name="vote_one_per_voter_per_poll"),
        ]
        indexes = [
            models.Index(fields=("voter_id", "created_at"), name="vote_voter_created_idx"),
            models.Index(fields=("poll_id", "choice_id"), name="vote_poll_choice_idx"),
        ]

    def __str__(self) -> str:
        return f"vote {self.id} by {self.voter_id}"


class PollReplica(models.Model):
    """What vote_service knows about a poll, from ``poll.*`` events or a fetch on a miss."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        OPEN = "open"
        CLOSED = "closed"
        DELETED = "deleted"

    id = models.UUIDField(primary_key=True)
    owner_id = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    closes_at = models.DateTimeField(null=True, blank=True)
    # When the copied state was true at the source; older events never overwrite newer state.
    source_time = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"poll {self.id} ({self.status})"


class ChoiceReplica(models.Model):
    """Which poll a choice belongs to (and its display position), from ``choice.*`` events or a fetch."""

    id = models.UUIDField(primary_key=True)
    poll_id = models.UUIDField(db_index=True)
    position = models.IntegerField(default=0)
    deleted = models.BooleanField(default=False)
    source_time = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("position", "id")

    def __str__(self) -> str:
        return f"choice {self.id} of poll {self.poll_id}"
