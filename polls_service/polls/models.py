"""Polls and the projections polls_service keeps from other services' events."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThanOrEqual

from servicekit.replicas import Replica

QUESTION_MAX = 500
DESCRIPTION_MAX = 5000
MIN_CHOICES_TO_OPEN = 2


class PollStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class Poll(models.Model):
    """A question with choices (kept by choice_service) that moves draft -> open -> closed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    question = models.CharField(max_length=QUESTION_MAX)
    description = models.TextField(max_length=DESCRIPTION_MAX, blank=True, default="")
    status = models.CharField(max_length=6, choices=PollStatus.choices, default=PollStatus.DRAFT)
    owner_id = models.BigIntegerField(db_index=True)
    owner_username = models.CharField(max_length=150, blank=True, default="")
    closes_at = models.DateTimeField(null=True, blank=True)
    # Who may vote (servicekit.voter_policy; None: every signed-in user), set while drafting.
    voter_policy = models.JSONField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Incremented in the same transaction as every change; events, internal reads and gate commands carry it.
    version = models.BigIntegerField(default=1)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=("status", "-created_at"), name="poll_status_created_idx"),
            models.Index(fields=("status", "closes_at"), name="poll_status_closes_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=PollStatus.values), name="poll_status_valid"),
            models.CheckConstraint(condition=GreaterThanOrEqual(Length("question"), 1), name="poll_question_not_empty"),
            models.CheckConstraint(
                condition=~models.Q(status=PollStatus.DRAFT) | models.Q(opened_at__isnull=True),
                name="poll_draft_never_opened",
            ),
        ]

    def __str__(self) -> str:
        return self.question

    @property
    def is_draft(self) -> bool:
        return self.status == PollStatus.DRAFT

    @property
    def is_open(self) -> bool:
        return self.status == PollStatus.OPEN


class VoteReplica(Replica):
    """Projection of vote_service, one row per vote (``id`` = the vote's): drives the v3 ``vote`` link.

    Kept from vote.cast / vote.retracted by version (a retraction is stored as ``deleted`` at its version).
    """

    poll_id = models.UUIDField()
    voter_id = models.BigIntegerField()
    deleted = models.BooleanField(default=False)

    class Meta:
        # Serves both the v3 links (voter_id = x AND poll_id IN (...)) and a poll's deletion (poll_id = x).
        indexes = [models.Index(fields=("poll_id", "voter_id"), name="votereplica_poll_voter_idx")]

    def __str__(self) -> str:
        return f"vote {self.id} of {self.voter_id} on {self.poll_id}{' (retracted)' if self.deleted else ''}"


class ChoiceReplica(Replica):
    """Projection of choice_service, one row per choice (``id`` = the choice's): how many a poll has.

    Kept from choice.created / updated / deleted by version (a deletion is stored as ``deleted``).
    """

    poll_id = models.UUIDField(db_index=True)
    deleted = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"choice {self.id} of {self.poll_id}{' (deleted)' if self.deleted else ''}"
