"""Service-to-service endpoints (``/internal/...``): the base view that admits only the services it names.

Internal endpoints are never routed by the gateway. They accept only a calling service's own signed
token (``Authorization: Service <JWT>``, ``servicekit.service_identity``) minted for this service, and
only from the services listed in ``callers`` (``servicekit.permissions.IsService``): a user's access
token, even an operator's, is a 401, and another service is a 403::

    from drf_spectacular.utils import extend_schema
    from servicekit.internal import InternalAPIView

    @extend_schema(exclude=True)          # not part of the public API documents
    class InternalPollView(InternalAPIView):
        callers = frozenset({"choices", "votes"})   # replica misses of both consumers
        def get(self, request, poll_id): ...
"""

from __future__ import annotations

from rest_framework.views import APIView

from servicekit.permissions import IsService
from servicekit.service_identity import ServiceAuthentication


class InternalAPIView(APIView):
    """An ``APIView`` for other services only: service authentication and the ``IsService`` allow-list.

    ``callers`` is the allow-list of (caller, endpoint) for this endpoint; empty (the default) admits no one.
    """

    authentication_classes = [ServiceAuthentication]
    permission_classes = [IsService]
    callers: frozenset[str] = frozenset()
