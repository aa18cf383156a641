"""The HAL renderer (``application/hal+json``) used by v3 views.

``VersionedViewMixin`` selects it for v3 automatically; plain JSON stays acceptable for clients that
ask for ``application/json``::

    renderer_classes = [HALJSONRenderer, JSONRenderer]
"""

from __future__ import annotations

from rest_framework.renderers import JSONRenderer

HAL_MEDIA_TYPE = "application/hal+json"


class HALJSONRenderer(JSONRenderer):
    """JSON rendered with the HAL media type; the body shape comes from HAL serializers and pagination."""

    media_type = HAL_MEDIA_TYPE
    format = "hal"
