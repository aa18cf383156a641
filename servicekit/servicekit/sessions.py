"""Revoked sessions: a per-user session generation every service checks access tokens against.

Tokens stay stateless: the issuer (polls_service) numbers each user's sessions and stamps the number
in every token it mints (claim ``sgen``; a token without it is generation 0). Logging out everywhere,
changing the password, a demotion or deactivation, and a refresh token coming back after rotation
increment the user's generation (``revoke``, on the issuer, in the transaction of the change) and emit
``user.sessions_revoked``; choice_service and vote_service store it with ``apply`` (only ever upwards:
whatever order events arrive in, the highest generation wins). A token is refused once its ``sgen`` is
below its user's generation, on all three services::

    from servicekit import sessions

    generation = sessions.revoke(user_id=7)              # issuer, inside transaction.atomic()
    sessions.apply(user_id=7, generation=generation)     # consumers, from the event
    sessions.check(user_id=7, claims=claims)             # JWTAuthentication, every request

``check`` costs a dictionary lookup: each process keeps the revocations young enough to matter (an
access token lives at most 15 minutes) and reloads them from its own database at most every
``SESSION_REVOCATION_REFRESH_SECONDS`` (0.5 s), so a revocation reaches every process of a service
that has the row within that time. Across services it adds the event's delivery (tens of
milliseconds when the pipeline is idle). If the database cannot be read, the last snapshot is kept
and the reload is tried again on the next request.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from servicekit.conf import servicekit_settings
from servicekit.env import env

logger = logging.getLogger(__name__)

servicekit_settings.register_defaults(
    {"SESSION_REVOCATION_REFRESH_SECONDS": env.float("SESSION_REVOCATION_REFRESH_SECONDS", default=0.5)}
)

CLAIM = "sgen"
# The longest an access token can live (JWT_ACCESS_MINUTES is capped at 15) plus the verification
# leeway (capped at 30 s): an older revocation can no longer refuse any access token.
RELEVANT_FOR = timedelta(minutes=15, seconds=30)


def token_generation(claims: dict[str, Any]) -> int:
    """The session generation a token was minted in (0 for tokens from before generations existed)."""
    value = claims.get(CLAIM, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else -1


def current_generation(*, user_id: int) -> int:
    """The user's session generation, read from this service's database (what the issuer stamps)."""
    from servicekit.models import SessionRevocation

    row = SessionRevocation.objects.filter(user_id=user_id).values_list("generation", flat=True).first()
    return row or 0


def revoke(*, user_id: int) -> int:
    """Issuer only: end every session of ``user_id`` so far; the new generation (call inside ``atomic``).

    The row is locked, so two revocations at once give two generations, never one twice.
    """
    from servicekit.models import SessionRevocation

    row, created = SessionRevocation.objects.select_for_update().get_or_create(
        user_id=user_id, defaults={"generation": 1}
    )
    if not created:
        row.generation += 1
        row.revoked_at = timezone.now()
        row.save(update_fields=["generation", "revoked_at"])
    _expire_now_and_on_commit()
    return row.generation


def apply(*, user_id: int, generation: int) -> bool:
    """Consumers: hold ``generation`` for ``user_id`` unless a newer one is held; whether it changed."""
    from servicekit.models import SessionRevocation

    with transaction.atomic():
        row, created = SessionRevocation.objects.select_for_update().get_or_create(
            user_id=user_id, defaults={"generation": generation}
        )
        if not created and row.generation >= generation:
            return False
        if not created:
            row.generation = generation
            row.revoked_at = timezone.now()
            row.save(update_fields=["generation", "revoked_at"])
        _expire_now_and_on_commit()
    return True


def forget() -> None:
    """Drop this process's copy of the revocations: the next check reads them again (tests use it)."""
    _snapshot.expire()


def _expire_now_and_on_commit() -> None:
    # Now: this thread's next check sees the change on its own connection at once. On commit: so does
    # every other thread of the process, whose reload may have read the old rows meanwhile.
    _snapshot.expire()
    transaction.on_commit(_snapshot.expire)


def revoked(*, user_id: int, claims: dict[str, Any]) -> bool:
    """Whether the token described by ``claims`` belongs to a revoked session of ``user_id``."""
    return token_generation(claims) < _snapshot.generation(user_id)


class _Snapshot:
    """This process's copy of the recent revocations, reloaded when older than the refresh interval."""

    def __init__(self) -> None:
        self._generations: dict[int, int] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def generation(self, user_id: int) -> int:
        if time.monotonic() - self._loaded_at > servicekit_settings.SESSION_REVOCATION_REFRESH_SECONDS:
            self._reload()
        return self._generations.get(user_id, 0)

    def expire(self) -> None:
        self._loaded_at = float("-inf")

    def _reload(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another thread is reloading: this request uses the copy it has
        try:
            from servicekit.models import SessionRevocation

            since = timezone.now() - RELEVANT_FOR
            started = time.monotonic()
            try:
                rows = SessionRevocation.objects.filter(revoked_at__gte=since).values_list("user_id", "generation")
                self._generations = dict(rows)
            except DatabaseError:
                logger.warning("session revocations could not be read; keeping the last copy", exc_info=True)
                return
            self._loaded_at = started
        finally:
            self._lock.release()


_snapshot = _Snapshot()
