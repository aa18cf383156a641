"""Choices API, one viewset for v1, v2 and v3: views validate, call one service or selector, render."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from choices import selectors, services
from choices.api.filters import ChoiceFilter
from choices.api.hal import ChoiceHALSerializer
from choices.api.serializers import ChoiceCreateSerializer, ChoiceSerializer, ChoiceUpdateSerializer
from choices.models import Choice
from servicekit.api import UUID_PATTERN, VersionedGenericViewSet
from servicekit.errors import Problem
from servicekit.permissions import IsAuthenticatedOrReadOnly
from servicekit.ratelimit import rate_limited


@rate_limited("choice_write")
class ChoiceViewSet(VersionedGenericViewSet):
    """Choices of polls. Anyone reads the choices of non-draft polls; the poll's owner (or an operator)
    adds, edits, reorders (``position``) and removes them while the poll is a draft."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    serializer_classes = {"v1": ChoiceSerializer, "v3": ChoiceHALSerializer}
    input_serializer_classes = {"create": ChoiceCreateSerializer, "partial_update": ChoiceUpdateSerializer}
    v2_filter_backends = (DjangoFilterBackend,)
    filterset_class = ChoiceFilter
    embedded_name = "choices"
    ordering = ("position", "created_at", "id")
    lookup_value_regex = UUID_PATTERN
    # 404 anywhere: an unknown ``?format=``; 400 on v1 lists: a malformed ``page_size``/``poll``.
    error_statuses = {
        "*": (404,),
        "list": (400,),
        "create": (409, 422, 503),
        "partial_update": (409,),
        "destroy": (409,),
    }

    def get_queryset(self) -> Any:
        return selectors.choice_list_visible(actor=self.actor)

    def filter_queryset(self, queryset: Any) -> Any:
        queryset = super().filter_queryset(queryset)
        if self.action == "list" and not self.filter_backends:
            # v1 has no filter backends but keeps the documented ``?poll=<id>``.
            filterset = ChoiceFilter(self.request.query_params, queryset=queryset, request=self.request)
            if not filterset.is_valid():
                raise translate_validation(filterset.errors)
            queryset = filterset.qs
        return queryset

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context.setdefault("polls", {})
        return context

    def _render(self, data: Choice | list[Choice], *, many: bool = False) -> Any:
        context = self.get_serializer_context()
        if self.api_version == "v3":
            choices = data if isinstance(data, list) else [data]
            context["polls"] = selectors.poll_replicas_by_id(poll_ids={c.poll_id for c in choices})
        return self.represent(data, many=many, context=context)

    def _refetch_and_store_stale_draft(self, poll_id: Any) -> None:
        """A reader who may not see drafts asks for a poll the replica still calls draft: it may have just
        opened (event in flight), so ask polls_service once and store its answer in the poll replica (a
        write on a read) before answering."""
        if poll_id is None:
            return
        poll = selectors.poll_replica_get(poll_id=poll_id)
        if poll is not None and poll.is_draft and not selectors.can_manage_poll(actor=self.actor, poll=poll):
            # polls_service unavailable: answer from the replica as it is.
            with contextlib.suppress(Problem):
                services.poll_replica_get_or_refetch_draft(poll_id=poll_id)

    @staticmethod
    def _with_votes(choice: Choice) -> Choice:
        """The written choice as readers see it: with its ``votes`` (derived from the vote projection)."""
        found = selectors.choice_get_with_votes(choice_id=choice.id)
        if found is None:  # removed by another request since
            choice.votes = 0
            return choice
        return found

    @extend_schema(summary="List choices (optionally of one poll)")
    def list(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        poll_param = request.query_params.get("poll")
        if not page and poll_param and not request.query_params.get("cursor") and not request.query_params.get("page"):
            # Nothing visible of a poll the replica may hold as a stale draft: refetch and store it, then read again.
            self._refetch_and_store_stale_draft(uuid.UUID(poll_param))  # the filter already validated it
            page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self._render(list(page), many=True))

    @extend_schema(summary="Read a choice")
    def retrieve(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        try:
            choice = self.get_object()
        except Http404:
            hidden = Choice.objects.filter(pk=self.kwargs.get(self.lookup_field)).only("poll_id").first()
            if hidden is None:
                raise
            # Hidden by a poll the replica may hold as a stale draft: refetch and store it, then read again.
            self._refetch_and_store_stale_draft(hidden.poll_id)
            choice = self.get_object()
        return Response(self._render(choice))

    @extend_schema(summary="Add a choice to a draft poll", request=ChoiceCreateSerializer)
    def create(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        data = self.validated_input(request)
        choice = services.choice_create(
            actor=self.actor, poll_id=data["poll"], text=data["text"], position=data.get("position")
        )
        location = f"/api/{self.api_version}/choices/{choice.id}/"
        return Response(
            self._render(self._with_votes(choice)), status=status.HTTP_201_CREATED, headers={"Location": location}
        )

    @extend_schema(summary="Edit or reorder a choice of a draft poll", request=ChoiceUpdateSerializer)
    def partial_update(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        choice = self.get_object()
        data = self.validated_input(request, partial=True)
        choice = services.choice_update(actor=self.actor, choice=choice, **data)
        return Response(self._render(self._with_votes(choice)))

    @extend_schema(summary="Remove a choice from a draft poll", responses={204: None})
    def destroy(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        services.choice_delete(actor=self.actor, choice=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
