"""The vote ledger (one vote per user per poll, decided by the database) and the replicas it checks against.

The replicas are ordered by the owner's version (``servicekit.replicas``), never by clocks.
"""

from __future__ import annotations

import uuid

from django.db import models

from servicekit.replicas import PollReplicaBase, Replica


class Vote(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    poll_id = models.UUIDField()
    choice_id = models.UUIDField()
    voter_id = models.BigIntegerField()
    # Created at 1, incremented with each change (a retraction's event carries version + 1).
    version = models.BigIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "id")
        constraints = [
            # A race of two requests cannot double-vote: the second insert does nothing here (409).
            models.UniqueConstraint(fields=("poll_id", "voter_id"), name="vote_one_per_voter_per_poll"),
        ]
        indexes = [
            models.Index(fields=("voter_id", "created_at"), name="vote_voter_created_idx"),
            models.Index(fields=("poll_id", "choice_id"), name="vote_poll_choice_idx"),
        ]

    def __str__(self) -> str:
        return f"vote {self.id} by {self.voter_id}"


class PollReplica(PollReplicaBase):
    """What vote_service knows about a poll (``poll.*`` events, a fetch on a miss, polls_service's seal).

    Its row is the gate: a vote, change or retraction holds ``FOR SHARE`` on it while it checks and
    writes; the seal takes ``FOR UPDATE``, so it waits for them and everything after it sees its state.
    ``voter_policy`` (``servicekit.voter_policy``) comes with the poll's events and reads; the seal
    leaves it as it is (it can only change while the poll is a draft).
    """

    voter_policy = models.JSONField(null=True, blank=True)


class ChoiceReplica(Replica):
    """Which poll a choice belongs to (and its display position), from ``choice.*`` events or a fetch."""

    poll_id = models.UUIDField(db_index=True)
    position = models.IntegerField(default=0)
    deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ("position", "id")

    def __str__(self) -> str:
        return f"choice {self.id} of poll {self.poll_id}"
