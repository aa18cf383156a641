"""``GET /api/v3/``: the hypermedia entry point; a client needs no other URL."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from servicekit.api import VersionedAPIView, link
from servicekit.api.hal import LINK_SCHEMA, action

RELATIONS = (
    "polls",
    "choices",
    "votes",
    "results",
    "register",
    "token",
    "refresh",
    "logout",
    "me",
    "docs",
    "jwks",
)


def entry_links() -> dict[str, Any]:
    return {
        "self": link("/api/v3/"),
        "polls": link("/api/v3/polls/"),
        "create_poll": action("/api/v3/polls/", "POST"),
        "choices": link("/api/v3/choices/"),
        "votes": link("/api/v3/votes/"),
        "results": link("/api/v3/results/{poll}/", templated=True),
        "register": action("/api/v3/auth/register/", "POST"),
        "token": action("/api/v3/auth/token/", "POST"),
        "refresh": action("/api/v3/auth/token/refresh/", "POST"),
        "logout": action("/api/v3/auth/logout/", "POST"),
        "me": link("/api/v3/auth/me/"),
        "docs": link("/api/docs/"),
        "jwks": link("/.well-known/jwks.json"),
    }


class EntryPointView(VersionedAPIView):
    """The API root of v3."""

    versions = ("v3",)

    @extend_schema(
        responses={
            200: {
                "type": "object",
                "required": ["_links"],
                "properties": {
                    "_links": {
                        "type": "object",
                        "required": ["self", *RELATIONS],
                        "properties": dict.fromkeys(("self", "create_poll", *RELATIONS), LINK_SCHEMA),
                    }
                },
            }
        },
        operation_id="entry_point",
    )
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        """Links to every collection and to authentication."""
        return Response({"_links": entry_links()})
