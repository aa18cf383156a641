"""Choices of polls, and this service's replicas: the polls they belong to and every vote (per vote id)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models.functions import Lower

from servicekit.replicas import PollReplicaBase, Replica

MAX_CHOICES_PER_POLL = 20
TEXT_MAX_LENGTH = 200


class PollReplica(PollReplicaBase):
    """What choice_service knows about a poll: from ``poll.*`` events, the freeze command, or a fetch on a miss.

    Choice writes and the freeze command lock this row, so once a freeze to ``open`` answered, no
    write of the poll's choices can commit.
    """


class Choice(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    poll_id = models.UUIDField(db_index=True)
    text = models.CharField(max_length=TEXT_MAX_LENGTH)
    position = models.IntegerField(default=0)
    # 1 when created, +1 in the transaction of every change (the deletion event carries version + 1).
    version = models.BigIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("position", "created_at", "id")
        constraints = [
            models.UniqueConstraint("poll_id", Lower("text"), name="choice_text_unique_per_poll_ci"),
        ]

    def __str__(self) -> str:
        return self.text


class VoteProjection(Replica):
    """One vote of vote_service's ledger (id = the vote's id), kept from ``vote.*`` events and reconciliation.

    A choice's ``votes`` is the number of its rows that are not ``deleted`` (derived, never a counter).
    A retracted vote stays as a deleted row at the retraction's version, so a late cast cannot revive it.
    """

    poll_id = models.UUIDField(db_index=True)
    choice_id = models.UUIDField()
    deleted = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["choice_id"], condition=models.Q(deleted=False), name="vote_projection_live_choice"),
        ]

    def __str__(self) -> str:
        return f"vote {self.id} for {self.choice_id} (v{self.version}{', deleted' if self.deleted else ''})"
