"""ETags on reads (v2+): a strong hash of the rendered body; ``If-None-Match`` answers 304.

``VersionedViewMixin`` calls ``apply_etag`` on every successful v2+ ``GET``/``HEAD``::

    GET /api/v2/polls/<id>/                      -> 200, ETag: "3f2a..."
    GET /api/v2/polls/<id>/ If-None-Match: "3f2a..." -> 304, empty body, same ETag

The body of a v3 resource depends on the caller (its action links), so the hash does too and
``Vary: Authorization, Accept`` tells caches so.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import get_conditional_response, patch_vary_headers


def strong_etag(content: bytes) -> str:
    """A strong ETag (quoted) for a representation's bytes."""
    return '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def apply_etag(request: HttpRequest, response: Any) -> HttpResponseBase:
    """Render ``response``, set its ``ETag``; return a 304 instead when ``If-None-Match`` matches."""
    if hasattr(response, "render") and not getattr(response, "is_rendered", True):
        response.render()
    etag = strong_etag(response.content)
    response["ETag"] = etag
    patch_vary_headers(response, ("Authorization", "Accept"))
    conditional = get_conditional_response(request, etag=etag, response=response)
    return conditional if conditional is not None else response
