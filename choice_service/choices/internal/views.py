"""``/internal/`` views: service credential only, never routed by the gateway (routes in ``internal/urls.py``)."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from choices import selectors, services
from choices.internal.serializers import PollStateSerializer
from servicekit.internal import InternalAPIView


@extend_schema(exclude=True)
class InternalChoice(InternalAPIView):
    """``{id, poll_id, text, position, version}`` of one choice (vote_service's replica miss)."""

    # vote_service checks a vote's choice it has not yet heard of.
    callers = frozenset({"votes"})

    def get(self, request: Any, choice_id: uuid.UUID) -> Response:
        data = selectors.choice_for_internal(choice_id=choice_id)
        if data is None:
            raise Http404
        return Response(data)


@extend_schema(exclude=True)
class InternalPollChoices(InternalAPIView):
    """``{poll_id, choices: [{id, text, position, version}]}``: every choice of a poll, to warm a replica."""

    # vote_service fills its choice replicas of a poll in one read.
    callers = frozenset({"votes"})

    def get(self, request: Any, poll_id: uuid.UUID) -> Response:
        return Response({"poll_id": str(poll_id), "choices": selectors.poll_choices_for_internal(poll_id=poll_id)})


@extend_schema(exclude=True)
class InternalPollState(InternalAPIView):
    """``PUT`` the freeze command: apply a poll's state by version under the replica row lock; opening
    with fewer than ``min_choices`` choices is a 409 ``not-enough-choices`` (``choices: n``) that changes
    nothing. 200 ``{poll_id, version, status, choices}``: the replica's state after the call."""

    # Only the poll's owner service freezes (or thaws) its choices.
    callers = frozenset({"polls"})

    def put(self, request: Any, poll_id: uuid.UUID) -> Response:
        serializer = PollStateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.poll_freeze(poll_id=poll_id, **serializer.validated_data)
        return Response(
            {"poll_id": result.poll_id, "version": result.version, "status": result.status, "choices": result.choices}
        )
