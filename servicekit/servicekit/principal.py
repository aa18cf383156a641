"""The authenticated caller, as every service sees it: built from a verified access token alone.

``request.user`` is a ``Principal`` in every API view (``servicekit.auth.JWTAuthentication`` sets
it), so views and services read ``actor.id``, ``actor.username`` and ``actor.is_operator`` without
a user table lookup::

    def poll_open(*, poll: Poll, actor: Principal) -> Poll: ...
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The services of the platform, by the name each carries in its settings (SERVICE_NAME) and its service tokens.
SERVICES = ("polls", "choices", "votes")

ROLE_USER = "user"
ROLE_OPERATOR = "operator"


@dataclass(frozen=True)
class Principal:
    """An authenticated user: id (the token's ``sub``), username and roles."""

    id: int
    username: str
    roles: frozenset[str] = field(default_factory=lambda: frozenset({ROLE_USER}))

    is_authenticated = True
    is_anonymous = False
    is_active = True

    @property
    def pk(self) -> int:
        return self.id

    @property
    def is_operator(self) -> bool:
        return ROLE_OPERATOR in self.roles

    # Django's permission API, so admin-agnostic code can treat a Principal like a user object.
    @property
    def is_staff(self) -> bool:
        return self.is_operator

    def __str__(self) -> str:
        return self.username
