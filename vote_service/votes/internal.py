"""``/internal/`` endpoints: service credential only, never routed by the gateway."""

from __future__ import annotations

import uuid
from typing import Any

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from servicekit.auth import ServiceTokenAuthentication
from servicekit.permissions import IsService
from votes import selectors


@extend_schema(exclude=True)
class InternalPollCounts(APIView):
    """``{poll_id, counts: {choice_id: n}}`` from the vote ledger (choice_service's tally reconciliation)."""

    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [IsService]

    def get(self, request: Any, poll_id: uuid.UUID) -> Response:
        return Response({"poll_id": str(poll_id), "counts": selectors.vote_counts(poll_id=poll_id)})


urlpatterns = [
    path("internal/polls/<uuid:poll_id>/counts/", InternalPollCounts.as_view(), name="internal-poll-counts"),
]
