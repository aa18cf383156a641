"""Who may keep a read's answer, and for how long: ``Cache-Control`` on public reads.

A view whose successful ``GET``/``HEAD`` answers are the same for every anonymous caller mixes in
``PublicReadMixin`` (before the servicekit base view, so it sees the final response, ETag included)::

    from servicekit.caching import PUBLIC_IMMUTABLE, PublicReadMixin

    class ResultsView(PublicReadMixin, VersionedAPIView):
        read_cache_control = PUBLIC_REVALIDATE  # a vote must show in the next read
        def get(self, request, poll_id):
            ...
            if poll.status == "closed":
                self.read_cache_control = PUBLIC_IMMUTABLE  # a closed poll's results never change
            ...

    GET /api/v2/polls/<id>/                          -> Cache-Control: public, max-age=1
    GET /api/v2/results/<open id>/                   -> Cache-Control: public, no-cache
    GET /api/v2/results/<closed id>/                 -> Cache-Control: public, max-age=86400, immutable
    GET /api/v2/results/<id>/ Authorization: Bearer  -> Cache-Control: private, no-cache

``public, no-cache`` lets a client keep the answer but not use it without asking again (its ``ETag``
makes that a 304), and the gateway's micro-cache does not store it: an open poll's results count a vote
in the very next read, whoever reads them.

An answer to a caller with credentials (an ``Authorization`` header or a session cookie) may depend on
who asks (drafts, v3 action links), so it is ``private, no-cache``: neither the gateway's micro-cache nor
any shared cache keeps it. Every answer says ``Vary: Authorization, Accept``. Validators stay those of
``servicekit.api.conditional`` (the v2+ ``ETag``; ``If-None-Match`` -> 304 carries the same headers).
Errors and writes get no ``Cache-Control`` from here.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_vary_headers

PUBLIC_SHORT = "public, max-age=1"
PUBLIC_REVALIDATE = "public, no-cache"
PUBLIC_IMMUTABLE = "public, max-age=86400, immutable"
PRIVATE = "private, no-cache"
CACHEABLE_STATUSES = (200, 304)


def has_credentials(request: HttpRequest) -> bool:
    """Whether the request names a caller (a bearer token or a session), so its answer may be personal."""
    return bool(request.META.get("HTTP_AUTHORIZATION")) or settings.SESSION_COOKIE_NAME in request.COOKIES


def patch_read_cache(request: HttpRequest, response: HttpResponseBase, *, public: str = PUBLIC_SHORT) -> None:
    """Set ``Cache-Control`` (``public`` for anonymous callers, ``PRIVATE`` otherwise) and ``Vary`` on a
    successful ``GET``/``HEAD`` answer; leave anything else alone."""
    if request.method not in ("GET", "HEAD") or response.status_code not in CACHEABLE_STATUSES:
        return
    response["Cache-Control"] = PRIVATE if has_credentials(request) else public
    patch_vary_headers(response, ("Authorization", "Accept"))


class PublicReadMixin:
    """``Cache-Control`` for a view whose reads are public (see the module docstring). A handler sets
    ``self.read_cache_control`` to say how long its anonymous answer stays fresh (default ``PUBLIC_SHORT``;
    DRF builds a view instance per request, so the choice never leaks into another request)."""

    read_cache_control: str = PUBLIC_SHORT

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        patch_read_cache(request, response, public=self.read_cache_control)
        return response
