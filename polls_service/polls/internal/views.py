"""``GET /internal/polls/{id}/`` for other services (service credential only; never routed by the gateway)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from polls.selectors import poll_get
from servicekit.errors import Problem
from servicekit.internal import InternalAPIView


@extend_schema(exclude=True)
class InternalPollView(InternalAPIView):
    # Replica misses: choice_service (gating choice edits) and vote_service (gating votes).
    callers = frozenset({"choices", "votes"})

    def get(self, request: Any, poll_id: str) -> Response:
        poll = poll_get(poll_id=poll_id)
        if poll is None:
            raise Problem("No such poll.", status=404, code="not-found")
        return Response(
            {
                "id": str(poll.id),
                "owner_id": poll.owner_id,
                "status": poll.status,
                "closes_at": poll.closes_at,
                "voter_policy": poll.voter_policy,
                "version": poll.version,
            }
        )
