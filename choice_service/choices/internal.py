"""``/internal/`` endpoints: service credential only, never routed by the gateway."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from choices import selectors, services
from choices.models import PollReplica
from servicekit.api.strict_fields import StrictIntegerField
from servicekit.auth import ServiceTokenAuthentication
from servicekit.permissions import IsService
from servicekit.replicas import TOMBSTONE_VERSION

BIGINT_MAX = 2**63 - 1


class _Internal(APIView):
    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [IsService]


@extend_schema(exclude=True)
class InternalChoice(_Internal):
    """``{id, poll_id, text, position, version}`` of one choice (vote_service's replica miss)."""

    def get(self, request: Any, choice_id: uuid.UUID) -> Response:
        data = selectors.choice_for_internal(choice_id=choice_id)
        if data is None:
            raise Http404
        return Response(data)


@extend_schema(exclude=True)
class InternalPollChoices(_Internal):
    """``{poll_id, choices: [{id, text, position, version}]}``: every choice of a poll, to warm a replica."""

    def get(self, request: Any, poll_id: uuid.UUID) -> Response:
        return Response({"poll_id": str(poll_id), "choices": selectors.poll_choices_for_internal(poll_id=poll_id)})


class PollStateSerializer(serializers.Serializer):
    """The freeze command's body: a poll's state at ``version``, sent by polls_service before it commits."""

    version = StrictIntegerField(min_value=1, max_value=TOMBSTONE_VERSION - 1)
    owner_id = StrictIntegerField(min_value=-BIGINT_MAX, max_value=BIGINT_MAX)
    status = serializers.ChoiceField(choices=PollReplica.Status.choices)
    closes_at = serializers.DateTimeField(allow_null=True, required=False, default=None)
    min_choices = StrictIntegerField(required=False, min_value=0, max_value=BIGINT_MAX)


@extend_schema(exclude=True)
class InternalPollState(_Internal):
    """``PUT`` the freeze command: apply a poll's state by version under the replica row lock; opening
    with fewer than ``min_choices`` choices is a 409 ``not-enough-choices`` (``choices: n``) that changes
    nothing. 200 ``{poll_id, version, status, choices}``: the replica's state after the call."""

    def put(self, request: Any, poll_id: uuid.UUID) -> Response:
        serializer = PollStateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.poll_freeze(poll_id=poll_id, **serializer.validated_data)
        return Response(
            {"poll_id": result.poll_id, "version": result.version, "status": result.status, "choices": result.choices}
        )


urlpatterns = [
    path("internal/choices/<uuid:choice_id>/", InternalChoice.as_view(), name="internal-choice"),
    path("internal/polls/<uuid:poll_id>/choices/", InternalPollChoices.as_view(), name="internal-poll-choices"),
    path("internal/polls/<uuid:poll_id>/state/", InternalPollState.as_view(), name="internal-poll-state"),
]
