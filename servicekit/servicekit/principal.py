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


@dataclass(frozen=True)
class ClientPrincipal:
    """A registered machine client (OAuth 2.0 ``client_credentials``): no user, only the scopes it was granted.

    A client token is accepted only by a view that names a scope it holds (``client_scope``, checked by
    ``servicekit.auth.JWTAuthentication``); everywhere else it is a 403, and it never counts as a user.
    """

    client_id: str
    scopes: frozenset[str] = frozenset()

    id = None
    pk = None
    roles: frozenset[str] = frozenset()
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_operator = False
    is_staff = False
    is_service = False

    @property
    def username(self) -> str:
        return f"client:{self.client_id}"

    def __str__(self) -> str:
        return self.username
