"""``/internal/`` endpoints: service credential only, never routed by the gateway.

- ``PUT internal/polls/{id}/state/``: polls_service's gate command ("seal"), before it commits a close
  or a delete (or, compensating, a newer state): stored by version under the replica row's lock.
- ``GET internal/polls/{id}/votes/?after=&limit=``: the vote ledger by id, for choice_service's
  reconciliation.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from servicekit.api.strict_fields import StrictIntegerField
from servicekit.auth import ServiceTokenAuthentication
from servicekit.permissions import IsService
from votes import selectors, services
from votes.models import PollReplica

_BIGINT_MAX = 2**63 - 1


class PollStateSerializer(serializers.Serializer):
    """``{version, owner_id, status, closes_at}``; ``min_choices`` (choice_service's) is accepted and ignored."""

    version = StrictIntegerField(min_value=1, max_value=_BIGINT_MAX)
    owner_id = StrictIntegerField(min_value=-_BIGINT_MAX, max_value=_BIGINT_MAX)
    status = serializers.ChoiceField(choices=PollReplica.Status.choices)
    closes_at = serializers.DateTimeField(allow_null=True, required=False, default=None)
    min_choices = StrictIntegerField(min_value=0, required=False)


class LedgerQuerySerializer(serializers.Serializer):
    after = serializers.UUIDField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=1000)


class _Internal(APIView):
    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [IsService]


@extend_schema(exclude=True)
class InternalPollState(_Internal):
    """Answers ``{poll_id, version, status}``: the replica's state after the command (an older version
    changes nothing and answers the current state)."""

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
class InternalPollVotes(_Internal):
    """``{poll_id, votes: [{id, choice_id, version}], next}``, ordered by id; ``next`` null on the last page."""

    def get(self, request: Any, poll_id: uuid.UUID) -> Response:
        query = LedgerQuerySerializer(data={k: v for k, v in request.query_params.items() if v != ""})
        query.is_valid(raise_exception=True)
        params = query.validated_data
        return Response(selectors.vote_ledger_page(poll_id=poll_id, after=params.get("after"), limit=params["limit"]))


urlpatterns = [
    path("internal/polls/<uuid:poll_id>/state/", InternalPollState.as_view(), name="internal-poll-state"),
    path("internal/polls/<uuid:poll_id>/votes/", InternalPollVotes.as_view(), name="internal-poll-votes"),
]
