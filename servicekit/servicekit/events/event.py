"""``Event``: the immutable view of one event envelope that handlers receive.

Envelope (``contracts/events/schemas/envelope.json``)::

    {"id": "<uuid>", "type": "vote.cast", "occurred_at": "2026-01-01T12:00:00.000000Z",
     "producer": "votes", "aggregate_id": "<vote id>", "version": 3, "data": {...},
     "traceparent": "00-...-01" | null}

``version`` is the aggregate's version after the change; replicas order changes by it, never by
``occurred_at`` (the producer's clock, for humans and lag metrics only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    occurred_at: str
    producer: str
    aggregate_id: str
    data: dict[str, Any] = field(default_factory=dict)
    traceparent: str | None = None
    version: int | None = None

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any]) -> Event:
        """Build from a (validated) envelope dict; unknown extra keys are ignored."""
        return cls(
            id=str(envelope["id"]),
            type=envelope["type"],
            occurred_at=envelope["occurred_at"],
            producer=envelope["producer"],
            aggregate_id=str(envelope["aggregate_id"]),
            data=dict(envelope["data"]),
            traceparent=envelope.get("traceparent"),
            version=envelope.get("version"),
        )

    def envelope(self) -> dict[str, Any]:
        """The JSON-ready envelope dict (``version`` only when known)."""
        envelope: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "occurred_at": self.occurred_at,
            "producer": self.producer,
            "aggregate_id": self.aggregate_id,
            "data": self.data,
            "traceparent": self.traceparent,
        }
        if self.version is not None:
            envelope["version"] = self.version
        return envelope

    @property
    def occurred(self) -> datetime:
        """``occurred_at`` as an aware datetime (compare it to ignore older state)."""
        return datetime.fromisoformat(self.occurred_at.replace("Z", "+00:00"))
