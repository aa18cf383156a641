"""Votes and results API, one view per resource for v1, v2 and v3."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from servicekit.api import UUID_PATTERN, VersionedAPIView, VersionedGenericViewSet
from servicekit.caching import PUBLIC_IMMUTABLE, PUBLIC_REVALIDATE, PublicReadMixin
from servicekit.permissions import IsAuthenticated
from servicekit.ratelimit import rate_limited
from votes import results, selectors, services
from votes.api.filters import VoteFilter
from votes.api.hal import ResultsHALSerializer, VoteHALSerializer
from votes.api.serializers import ResultsSerializer, VoteChangeSerializer, VoteCreateSerializer, VoteSerializer
from votes.models import Vote


@rate_limited("vote")
class VoteViewSet(VersionedGenericViewSet):
    """Your votes. ``POST`` votes (once per poll), ``DELETE`` retracts while the poll is open, ``PATCH``
    (v2+) moves the vote to another choice of the same poll while it is open. Lists show only your votes."""

    permission_classes = [IsAuthenticated]
    serializer_classes = {"v1": VoteSerializer, "v3": VoteHALSerializer}
    input_serializer_classes = {"create": VoteCreateSerializer, "partial_update": VoteChangeSerializer}
    action_versions = {"partial_update": ("v2", "v3")}
    v2_filter_backends = (DjangoFilterBackend,)
    filterset_class = VoteFilter
    embedded_name = "votes"
    ordering = ("-created_at", "id")
    lookup_value_regex = UUID_PATTERN
    # 404 anywhere: an unknown ``?format=``; 400 on v1 lists: a malformed ``page_size``/``poll``.
    error_statuses = {
        "*": (404,),
        "list": (400,),
        "create": (409, 422, 503),
        "partial_update": (422, 503),
        "destroy": (422,),
    }

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return Vote.objects.none()
        return selectors.vote_list_own(actor=self.actor)

    def _render(self, data: Vote | list[Vote], *, many: bool = False) -> Any:
        context = self.get_serializer_context()
        if self.api_version == "v3":
            votes = data if isinstance(data, list) else [data]
            context["polls"] = selectors.poll_replicas_by_id(poll_ids={v.poll_id for v in votes})
        return self.represent(data, many=many, context=context)

    @extend_schema(summary="List your votes")
    def list(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self._render(list(page), many=True))

    @extend_schema(summary="Read one of your votes")
    def retrieve(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        return Response(self._render(self.get_object()))

    @extend_schema(summary="Vote in an open poll (once per poll)", request=VoteCreateSerializer)
    def create(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        data = self.validated_input(request)
        claims = request.auth if isinstance(request.auth, dict) else {}
        vote = services.vote_cast(actor=self.actor, poll_id=data["poll"], choice_id=data["choice"], claims=claims)
        location = f"/api/{self.api_version}/votes/{vote.id}/"
        return Response(self._render(vote), status=status.HTTP_201_CREATED, headers={"Location": location})

    @extend_schema(summary="Change your vote to another choice of the poll (v2+)", request=VoteChangeSerializer)
    def partial_update(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        vote = self.get_object()
        data = self.validated_input(request, partial=False)
        vote = services.vote_change(actor=self.actor, vote=vote, choice_id=data["choice"])
        return Response(self._render(vote))

    @extend_schema(summary="Retract your vote while the poll is open", responses={204: None})
    def destroy(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        services.vote_retract(actor=self.actor, vote=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ResultsView(PublicReadMixin, VersionedAPIView):
    """Totals per choice of a poll (every choice, zeros included), from the cache; anyone may read them
    for a non-draft poll (a draft's only its owner and operators)."""

    permission_classes = [AllowAny]
    client_scope = "results:read"  # OAuth machine clients holding it may read results too
    serializer_classes = {"v1": ResultsSerializer, "v3": ResultsHALSerializer}
    error_statuses = {"get": (503,)}
    read_cache_control = PUBLIC_REVALIDATE  # a vote shows in the very next read of an open poll's results

    @extend_schema(
        summary="Results of a poll",
        parameters=[OpenApiParameter("poll_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The poll.")],
    )
    def get(self, request: Any, poll_id: uuid.UUID, **kwargs: Any) -> Response:
        # A replica miss asks polls_service and stores its answer in the poll replica (a write on a read).
        poll = services.poll_replica_get_or_fetch(poll_id=poll_id)
        if poll is None or not selectors.poll_visible(actor=self.actor, poll=poll):
            raise Http404
        body = results.results_get(poll_id=poll_id)
        if poll.status == "closed":  # no vote is admitted once closed (the gate), so these are final
            self.read_cache_control = PUBLIC_IMMUTABLE
        return Response(self.get_serializer_class()(body).data)
