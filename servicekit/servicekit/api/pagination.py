"""Pagination per API version; ``VersionedViewMixin`` picks the right one from ``request.version``.

- v1 ``PageNumberPagination``: ``{count, next, previous, results}``, ``?page=N&page_size=M`` (M <= 100).
- v2 ``CursorPagination``: ``{next, previous, results}``, ``?cursor=...&page_size=M``; order from the
  view's ``ordering`` (or ``?ordering=`` when the view has an ``OrderingFilter``).
- v3 ``HALCursorPagination``: ``{count, _links: {self, next?, prev?}, _embedded: {<name>: [...]}}`` where
  ``<name>`` is the view's ``embedded_name`` (``"polls"``); hrefs are gateway paths.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from servicekit.api.hal import LINK_SCHEMA, as_path, link

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class StrictPageSizeMixin:
    """``page_size`` must be a positive integer (400 otherwise); above the maximum it is capped."""

    page_size: int
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request: Any) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: ["A positive integer is required."]})
        return min(int(raw), self.max_page_size)

    def _page_size_parameter(self) -> dict[str, Any]:
        return {
            "name": self.page_size_query_param,
            "required": False,
            "in": "query",
            "description": f"Items per page (default {DEFAULT_PAGE_SIZE}; values above {MAX_PAGE_SIZE} "
            f"are capped at {MAX_PAGE_SIZE}).",
            "schema": {"type": "integer", "minimum": 1},
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)  # type: ignore[misc]
        return [
            self._page_size_parameter() if parameter.get("name") == self.page_size_query_param else parameter
            for parameter in parameters
        ]


class PageNumberPagination(StrictPageSizeMixin, pagination.PageNumberPagination):
    """v1: ``{count, next, previous, results}``; ``page_size`` query parameter capped at 100."""

    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class CursorPagination(StrictPageSizeMixin, pagination.CursorPagination):
    """v2: opaque cursors, stable under concurrent inserts; ``page_size`` capped at 100."""

    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = ("-created_at",)

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        ordering = getattr(view, "ordering", None)
        if ordering:
            self.ordering = ordering
        return super().paginate_queryset(queryset, request, view)


class HALCursorPagination(CursorPagination):
    """v3: a HAL collection; the embedded key is the view's ``embedded_name``."""

    embedded_name = "items"

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        self.embedded_name = getattr(view, "embedded_name", None) or self.embedded_name
        self.count = queryset.count() if hasattr(queryset, "count") else len(queryset)
        self.request = request
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data: Any) -> Response:
        links: dict[str, Any] = {"self": link(as_path(self.request.get_full_path()) or "")}
        next_url, prev_url = as_path(self.get_next_link()), as_path(self.get_previous_link())
        if next_url:
            links["next"] = link(next_url)
        if prev_url:
            links["prev"] = link(prev_url)
        return Response({"count": self.count, "_links": links, "_embedded": {self.embedded_name: data}})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["_links", "_embedded"],
            "properties": {
                "count": {"type": "integer", "description": "Items in the whole collection (all pages)."},
                "_links": {
                    "type": "object",
                    "required": ["self"],
                    "properties": {"self": LINK_SCHEMA, "next": LINK_SCHEMA, "prev": LINK_SCHEMA},
                },
                "_embedded": {
                    "type": "object",
                    "required": [self.embedded_name],
                    "properties": {self.embedded_name: schema},
                },
            },
        }


def pagination_for(version: str | None, embedded_name: str | None = None) -> type[pagination.BasePagination]:
    """The pagination class of ``version``; for v3 bound to ``embedded_name`` (so the schema names it too)."""
    if version == "v1":
        return PageNumberPagination
    if version == "v3":
        return _hal_pagination(embedded_name or HALCursorPagination.embedded_name)
    return CursorPagination


@cache
def _hal_pagination(name: str) -> type[HALCursorPagination]:
    return type(f"HAL{name.title().replace('_', '')}Pagination", (HALCursorPagination,), {"embedded_name": name})
