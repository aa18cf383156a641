"""Who may do what: role checks on the ``Principal`` and object rules, as DRF permission classes.

Views combine them; services re-check the same rules with the plain functions (a service function
may be called from a task or another view, never trusting that a view checked)::

    from servicekit.permissions import IsAuthenticated, IsOwnerOrOperator, can_manage

    class PollDetail(APIView):
        permission_classes = [IsAuthenticatedOrReadOnly, IsOwnerOrOperator]

        def patch(self, request, poll_id):
            poll = get_object_or_404(Poll, pk=poll_id)
            self.check_object_permissions(request, poll)      # obj.owner_id == request.user.id or operator
            ...

    def poll_close(*, poll: Poll, actor: Principal) -> Poll:
        if not can_manage(actor, poll.owner_id):
            raise PermissionDenied

- ``IsAuthenticated``: a verified access token (a ``Principal``; the service credential does not count).
- ``IsAuthenticatedOrReadOnly``: anyone may read, writes need a token.
- ``IsOperator``: the ``operator`` role (Django staff in polls_service).
- ``IsOwnerOrOperator``: object rule, ``obj.owner_id == request.user.id`` or operator.
- ``IsVoter``: object rule, ``obj.voter_id == request.user.id`` -- only the voter, not even an operator.
- ``IsService``: the internal service credential (``servicekit.auth.ServiceTokenAuthentication``).

A user who may not see an object at all should get 404 rather than 403; filter querysets in
selectors (``Vote.objects.filter(voter_id=actor.id)``) and keep these classes as the second line.
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


def is_voter(user: Any, voter_id: Any) -> bool:
    """Only the voter themself (operators included in nothing here: votes are private)."""
    return is_principal(user) and voter_id is not None and str(voter_id) == str(user.id)


class IsAuthenticated(BasePermission):
    """Requires a verified access token; anonymous requests get 401 with ``WWW-Authenticate: Bearer``."""

    message = "Authentication credentials were not provided or are invalid."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_principal(request.user)


class IsAuthenticatedOrReadOnly(BasePermission):
    """Reads (GET, HEAD, OPTIONS) for everyone; anything else needs a verified access token."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in SAFE_METHODS or is_principal(request.user)


class IsOperator(BasePermission):
    """Requires the ``operator`` role."""

    message = "Only operators may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_operator(request.user)


class IsOwnerOrOperator(BasePermission):
    """Object rule: safe methods pass; writes need ``obj.owner_id == request.user.id`` or an operator.

    Set ``owner_field`` on the view (default ``"owner_id"``) when the owner lives elsewhere, e.g.
    ``"poll_owner_id"`` for a choice checked against its poll replica.
    """

    message = "Only the owner or an operator may change this."

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        field = getattr(view, "owner_field", "owner_id")
        return can_manage(request.user, getattr(obj, field, None))


class IsOwnerOrOperatorStrict(IsOwnerOrOperator):
    """Like ``IsOwnerOrOperator`` but reads too need the owner or an operator (drafts, private data)."""

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        field = getattr(view, "owner_field", "owner_id")
        return can_manage(request.user, getattr(obj, field, None))


class IsVoter(BasePermission):
    """Object rule for votes: only ``obj.voter_id == request.user.id``, for reads and writes alike."""

    message = "Only the voter may see or change this vote."

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return is_voter(request.user, getattr(obj, "voter_id", None))


class IsService(BasePermission):
    """Only internal calls carrying the service credential (``ServiceTokenAuthentication``)."""

    message = "This endpoint is for services only."

    def has_permission(self, request: Request, view: Any) -> bool:
        return getattr(request.user, "is_service", False) is True
