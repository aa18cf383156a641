"""Service-to-service endpoints (``/internal/...``): the base view that admits only the service credential.

Internal endpoints are never routed by the gateway and accept only ``Authorization: Service <token>``
(``servicekit.auth.ServiceTokenAuthentication``, ``servicekit.permissions.IsService``); a user's
access token, even an operator's, is a 401::

    from drf_spectacular.utils import extend_schema
    from servicekit.internal import InternalAPIView

    @extend_schema(exclude=True)          # not part of the public API documents
    class InternalPollView(InternalAPIView):
        def get(self, request, poll_id): ...
"""

from __future__ import annotations

from rest_framework.views import APIView

from servicekit.auth import ServiceTokenAuthentication
from servicekit.permissions import IsService


class InternalAPIView(APIView):
    """An ``APIView`` for other services only: service-token authentication and the ``IsService`` permission."""

    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [IsService]
