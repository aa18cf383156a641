"""Poll endpoints, one view set for v1, v2 and v3 (differences per version come from servicekit.api)."""

from __future__ import annotations

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response

from polls import selectors, services
from polls.api.filters import PollFilter
from polls.api.hal import PollHALSerializer
from polls.api.serializers import PollCreateSerializer, PollSerializer, PollUpdateSerializer
from servicekit.api import UUID_PATTERN, VersionedGenericViewSet
from servicekit.caching import PublicReadMixin
from servicekit.permissions import IsAuthenticatedOrReadOnly
from servicekit.ratelimit import rate_limited


@rate_limited("poll_write")
class PollViewSet(PublicReadMixin, VersionedGenericViewSet):
    """Polls: anyone reads open and closed polls; drafts only their owner and operators."""

    serializer_classes = {"v1": PollSerializer, "v3": PollHALSerializer}
    input_serializer_classes = {
        "create": PollCreateSerializer,
        "partial_update": PollUpdateSerializer,
        "open": None,
        "close": None,
    }
    permission_classes = [IsAuthenticatedOrReadOnly]
    v2_filter_backends = (DjangoFilterBackend, OrderingFilter)
    filterset_class = PollFilter
    ordering_fields = ("created_at", "updated_at")
    ordering = ("-created_at", "-id")
    embedded_name = "polls"
    lookup_value_regex = UUID_PATTERN
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    error_statuses = {
        "create": (422,),
        "partial_update": (409, 422),
        # 503: the service that enforces the new state (votes on close/delete, choices on open)
        # could not be reached in time; nothing changed.
        "destroy": (409, 503),
        "open": (409, 503),
        "close": (409, 503),
    }

    def get_queryset(self) -> Any:
        return selectors.poll_list_visible(actor=self.actor)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context.setdefault("voted", set())
        return context

    def _render(self, polls: Any, *, many: bool = False) -> Any:
        context = self.get_serializer_context()
        if self.api_version == "v3":
            items = polls if many else [polls]
            context["voted"] = selectors.polls_voted_by(actor=self.actor, poll_ids=[p.id for p in items])
        return self.represent(polls, many=many, context=context)

    def _location(self, poll: Any) -> str:
        return f"/api/{self.api_version}/polls/{poll.id}/"

    def list(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        """Polls the caller may see, newest first (v2+: filter by status, owner, search; order by created_at)."""
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self._render(page, many=True))

    def create(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        """Create a draft poll owned by the caller (``owner`` and ``status`` in the body are ignored)."""
        data = self.validated_input(request)
        poll = services.poll_create(actor=self.actor or request.user, **data)
        return Response(self._render(poll), status=status.HTTP_201_CREATED, headers={"Location": self._location(poll)})

    def retrieve(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        """One poll (a draft only for its owner or an operator)."""
        return Response(self._render(self.get_object()))

    def partial_update(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        """Change question, description or closes_at of a draft (owner or operator)."""
        poll = self.get_object()
        data = self.validated_input(request, partial=True)
        poll = services.poll_update(poll=poll, actor=request.user, data=data)
        return Response(self._render(poll))

    @extend_schema(responses={204: OpenApiResponse(description="Deleted.")})
    def destroy(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        """Delete a draft (owner or operator); operators may delete a poll in any state."""
        services.poll_delete(poll=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def open(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        """Open a draft for voting (owner or operator); needs at least two choices."""
        poll = services.poll_open(poll=self.get_object(), actor=request.user)
        return Response(self._render(poll))

    @action(detail=True, methods=["post"])
    def close(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        """Close an open poll (owner or operator); no more votes are accepted."""
        poll = services.poll_close(poll=self.get_object(), actor=request.user)
        return Response(self._render(poll))
