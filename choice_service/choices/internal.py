"""``/internal/`` endpoints: service credential only, never routed by the gateway."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from choices import selectors
from servicekit.auth import ServiceTokenAuthentication
from servicekit.permissions import IsService


class _Internal(APIView):
    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [IsService]


@extend_schema(exclude=True)
class InternalChoice(_Internal):
    """``{id, poll_id, text, position}`` of one choice (vote_service's replica miss)."""

    def get(self, request: Any, choice_id: uuid.UUID) -> Response:
        data = selectors.choice_for_internal(choice_id=choice_id)
        if data is None:
            raise Http404
        return Response(data)


@extend_schema(exclude=True)
class InternalPollChoices(_Internal):
    """``{poll_id, choices: [{id, text, position}]}``: every choice of a poll, to warm a replica."""

    def get(self, request: Any, poll_id: uuid.UUID) -> Response:
        return Response({"poll_id": str(poll_id), "choices": selectors.poll_choices_for_internal(poll_id=poll_id)})


urlpatterns = [
    path("internal/choices/<uuid:choice_id>/", InternalChoice.as_view(), name="internal-choice"),
    path("internal/polls/<uuid:poll_id>/choices/", InternalPollChoices.as_view(), name="internal-poll-choices"),
]
