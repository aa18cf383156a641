"""Choices of polls, their vote tallies, and this service's replica of the polls they belong to."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models.functions import Lower

MAX_CHOICES_PER_POLL = 20
TEXT_MAX_LENGTH = 200


class PollReplica(models.Model):
    """What choice_service knows about a poll: kept from ``poll.*`` events (or fetched on a miss)."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        OPEN = "open"
        CLOSED = "closed"
        DELETED = "deleted"

    id = models.UUIDField(primary_key=True)
    owner_id = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    closes_at = models.DateTimeField(null=True, blank=True)
    # When the state copied here was true at the source; an older event never overwrites a newer state.
    source_time = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"poll {self.id} ({self.status})"

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT

    @property
    def is_deleted(self) -> bool:
        return self.status == self.Status.DELETED


class Choice(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    poll_id = models.UUIDField(db_index=True)
    text = models.CharField(max_length=TEXT_MAX_LENGTH)
    position = models.IntegerField(default=0)
    # Projection of the vote ledger in vote_service, kept by vote.* events and reconciliation.
    votes = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("position", "created_at", "id")
        constraints = [
            models.UniqueConstraint("poll_id", Lower("text"), name="choice_text_unique_per_poll_ci"),
            models.CheckConstraint(condition=models.Q(votes__gte=0), name="choice_votes_not_negative"),
        ]

    def __str__(self) -> str:
        return self.text
