"""Tables of the event machinery, migrated into every service's own database (app label ``servicekit``).

- ``OutboxEvent``: events written in the same transaction as the change they describe; the relay
  publishes pending rows in ``id`` order and stamps ``sent_at`` once the broker confirmed.
- ``InboxEvent``: one row per (event, handler) this service has applied, written in the transaction
  that applies it (one ``INSERT ... ON CONFLICT DO NOTHING`` per batch); the unique constraint makes
  a redelivered event a no-op.
- ``DeadLetter``: events a handler gave up on after its retries, for operators (admin, ``list_dead_letters``)
  and ``replay_dead_letters``.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutboxEvent(models.Model):
    id = models.BigAutoField(primary_key=True)  # publish order
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=100)
    aggregate_id = models.CharField(max_length=100)
    envelope = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        app_label = "servicekit"
        db_table = "servicekit_outbox_event"
        ordering = ("id",)
        indexes = [
            models.Index(fields=["id"], condition=models.Q(sent_at__isnull=True), name="sk_outbox_pending_idx"),
            models.Index(fields=["sent_at"], name="sk_outbox_sent_idx"),
        ]
        verbose_name = "outbox event"

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({'sent' if self.sent_at else 'pending'})"


class InboxEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField()
    handler = models.CharField(max_length=200)
    event_type = models.CharField(max_length=100)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "servicekit"
        db_table = "servicekit_inbox_event"
        constraints = [models.UniqueConstraint(fields=["event_id", "handler"], name="sk_inbox_once_per_handler")]
        indexes = [models.Index(fields=["received_at"], name="sk_inbox_received_idx")]
        verbose_name = "inbox event"

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → {self.handler}"


class DeadLetter(models.Model):
    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(null=True, blank=True)
    event_type = models.CharField(max_length=100, blank=True, default="")
    queue = models.CharField(max_length=200)
    envelope = models.JSONField()
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "servicekit"
        db_table = "servicekit_dead_letter"
        ordering = ("-id",)
        indexes = [models.Index(fields=["replayed_at"], name="sk_deadletter_replayed_idx")]
        verbose_name = "dead letter"

    def __str__(self) -> str:
        return f"{self.event_type or '?'} {self.event_id or ''} ({'replayed' if self.replayed_at else 'dead'})"
