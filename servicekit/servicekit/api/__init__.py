"""Shared API plumbing: versions, pagination, HAL, ETags, idempotency, deprecation, text fields, schema.

One service mounts its views for every version and gets the platform's HTTP semantics::

    # <service>/urls.py
    from servicekit.api import schema_urlpatterns, versioned_urlpatterns
    urlpatterns = [*versioned_urlpatterns(router.urls), *schema_urlpatterns("polls")]

    # <app>/api/views.py
    from servicekit.api import VersionedGenericViewSet

Modules (each opens with its own usage):

- ``servicekit.api.versioning``  -- ``PathVersioning``, ``versioned_urlpatterns``, ``version_at_least``
- ``servicekit.api.views``       -- ``VersionedViewMixin`` / ``VersionedAPIView`` / ``VersionedGenericViewSet``
- ``servicekit.api.pagination``  -- v1 page numbers, v2 cursors, v3 HAL collections
- ``servicekit.api.hal``         -- ``link``, ``action``, ``links_field`` and the ``application/hal+json`` renderer
- ``servicekit.api.conditional`` -- ETag / If-None-Match -> 304
- ``servicekit.api.idempotency`` -- Idempotency-Key replay / 422 / in-progress 409
- ``servicekit.api.deprecation`` -- Deprecation / Sunset / Link headers of v1
- ``servicekit.api.fields``      -- ``TextField``: trimmed, no control characters, length limits
- ``servicekit.api.schema``      -- drf-spectacular: ``VersionedAutoSchema``, ``schema_urlpatterns``
"""

from typing import Any

from servicekit.api.hal import action, link, links_field
from servicekit.api.renderers import HAL_MEDIA_TYPE, HALJSONRenderer
from servicekit.api.versioning import (
    UUID_PATTERN,
    VERSIONS,
    PathVersioning,
    for_version,
    version_at_least,
    versioned_urlpatterns,
)

__all__ = [
    "HAL_MEDIA_TYPE",
    "UUID_PATTERN",
    "VERSIONS",
    "HALJSONRenderer",
    "PathVersioning",
    "VersionedAPIView",
    "VersionedGenericAPIView",
    "VersionedGenericViewSet",
    "VersionedViewMixin",
    "action",
    "for_version",
    "link",
    "links_field",
    "schema_urlpatterns",
    "version_at_least",
    "versioned_urlpatterns",
]


def __getattr__(name: str) -> Any:  # Views and schema import DRF/Django machinery: load them on first use.
    if name in {"VersionedAPIView", "VersionedGenericAPIView", "VersionedGenericViewSet", "VersionedViewMixin"}:
        from servicekit.api import views

        return getattr(views, name)
    if name == "schema_urlpatterns":
        from servicekit.api.schema import schema_urlpatterns

        return schema_urlpatterns
    raise AttributeError(name)
