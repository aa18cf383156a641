"""Who may do what: DRF permission classes for views, and the role and object rules services apply.

Views say who may call them at all; services check object rules with the plain functions (a service
function may be called from a task or another view, never trusting that a view checked)::

    from servicekit.permissions import IsAuthenticatedOrReadOnly, can_manage

    class PollDetail(APIView):
        permission_classes = [IsAuthenticatedOrReadOnly]

    def poll_close(*, poll: Poll, actor: Principal) -> Poll:
        if not can_manage(actor, poll.owner_id):      # the owner or an operator
            raise PermissionDenied

- ``IsAuthenticated``: a verified access token (a ``Principal``; the service credential does not count).
- ``IsAuthenticatedOrReadOnly``: anyone may read, writes need a token.
- ``IsService``: a calling service the view admits (``servicekit.service_identity``, ``view.callers``).
- ``is_principal``, ``is_operator``, ``can_manage``: the same rules as plain functions.

A user who may not see an object at all should get 404 rather than 403: filter querysets in
selectors (``Vote.objects.filter(voter_id=actor.id)``).
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from servicekit.principal import Principal


def is_principal(user: Any) -> bool:
    """True for a user authenticated by an access token (not anonymous, not the service credential)."""
    return isinstance(user, Principal) and user.is_authenticated


def is_operator(user: Any) -> bool:
    """True for an authenticated principal with the ``operator`` role."""
    return is_principal(user) and user.is_operator


def can_manage(user: Any, owner_id: Any) -> bool:
    """The owner (``owner_id == user.id``) or an operator may change the object."""
    if not is_principal(user):
        return False
    return user.is_operator or (owner_id is not None and str(owner_id) == str(user.id))


class IsAuthenticated(BasePermission):
    """Requires a verified access token; anonymous requests get 401 with ``WWW-Authenticate: Bearer``."""

    message = "Authentication credentials were not provided or are invalid."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_principal(request.user)


class IsAuthenticatedOrReadOnly(BasePermission):
    """Reads (GET, HEAD, OPTIONS) for everyone; anything else needs a verified access token."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in SAFE_METHODS or is_principal(request.user)


class IsService(BasePermission):
    """Only internal calls from a service the view lists in ``callers`` (``ServiceAuthentication``).

    A service credential the view does not admit is a 403 naming the caller (and counted); anything
    else that is not a service is refused like any unauthenticated call.
    """

    message = "This endpoint is for services only."

    def has_permission(self, request: Request, view: Any) -> bool:
        if getattr(request.user, "is_service", False) is not True:
            return False
        caller = getattr(request.user, "name", "")
        if caller in getattr(view, "callers", frozenset()):
            return True
        from servicekit.auth import record_auth_failure

        record_auth_failure("service_not_allowed")
        self.message = f"The {caller} service may not call this endpoint."
        return False
