"""Helpers for HAL ``_links`` (v3): every href is a gateway path, actions carry their HTTP method.

A HAL serializer builds links from the resource and the caller::

    from servicekit.api.hal import link, action

    def get__links(self, poll):
        links = {"self": link(f"/api/v3/polls/{poll.id}/"),
                 "results": link(f"/api/v3/results/{poll.id}/")}
        if can_open:
            links["open"] = action(f"/api/v3/polls/{poll.id}/open/", "POST")
        return links

Output: ``{"self": {"href": "/api/v3/polls/<id>/"}, "open": {"href": "...", "method": "POST"}}``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


def link(href: str, *, title: str | None = None, templated: bool = False) -> dict[str, Any]:
    """A HAL link object ``{"href": ...}`` (``templated``/``title`` only when given)."""
    result: dict[str, Any] = {"href": href}
    if templated:
        result["templated"] = True
    if title:
        result["title"] = title
    return result


def action(href: str, method: str, *, title: str | None = None) -> dict[str, Any]:
    """A link to an action the caller may take now: ``{"href": ..., "method": "POST"}``."""
    result = link(href, title=title)
    result["method"] = method.upper()
    return result


def as_path(url: str | None) -> str | None:
    """An absolute URL reduced to its path and query, so hrefs are gateway paths whatever the host."""
    if not url:
        return None
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


LINK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "href": {"type": "string", "description": "Gateway path of the related resource or action."},
        "method": {"type": "string", "description": "HTTP method, present on action links."},
        "templated": {"type": "boolean"},
        "title": {"type": "string"},
    },
    "required": ["href"],
}


def links_field(
    *relations: str, optional: tuple[str, ...] = (), help_text: str = "", method_name: str | None = None
) -> serializers.Field[Any, Any, Any, Any]:
    """A ``_links`` serializer field for the schema: the named relations, each a HAL link.

    The value is produced by a ``get__links`` method on the serializer (a ``SerializerMethodField``);
    this function only documents it::

        _links = links_field("self", "poll", optional=("edit", "delete"))
    """
    properties = dict.fromkeys((*relations, *optional), LINK_SCHEMA)
    schema = {
        "type": "object",
        "properties": properties,
        "required": list(relations),
        "description": help_text or "HAL links: related resources and the actions the caller may take now.",
    }

    @extend_schema_field(schema)
    class _LinksField(serializers.SerializerMethodField):
        pass

    return _LinksField(method_name=method_name)
