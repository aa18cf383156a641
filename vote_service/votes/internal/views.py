"""``/internal/`` views: service credential only, never routed by the gateway (routes in ``internal/urls.py``)."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from servicekit.internal import InternalAPIView
from votes import selectors, services
from votes.internal.serializers import LedgerQuerySerializer, PollStateSerializer


@extend_schema(exclude=True)
class InternalPollState(InternalAPIView):
    """Answers ``{poll_id, version, status}``: the replica's state after the command (an older version
    changes nothing and answers the current state)."""

    # Only the poll's owner service seals it.
    callers = frozenset({"polls"})

    def put(self, request: Any, poll_id: uuid.UUID) -> Response:
        body = PollStateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        replica = services.poll_replica_seal(
            poll_id=poll_id,
            version=data["version"],
            state={"owner_id": data["owner_id"], "status": data["status"], "closes_at": data["closes_at"]},
        )
        return Response({"poll_id": str(poll_id), "version": replica.version, "status": replica.status})


@extend_schema(exclude=True)
class InternalPollVotes(InternalAPIView):
    """``{poll_id, votes: [{id, choice_id, version}], next}``, ordered by id; ``next`` null on the last page."""

    # choice_service reconciles its projection against the ledger.
    callers = frozenset({"choices"})

    def get(self, request: Any, poll_id: uuid.UUID) -> Response:
        query = LedgerQuerySerializer(data={k: v for k, v in request.query_params.items() if v != ""})
        query.is_valid(raise_exception=True)
        params = query.validated_data
        return Response(selectors.vote_ledger_page(poll_id=poll_id, after=params.get("after"), limit=params["limit"]))
