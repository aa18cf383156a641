"""Django's PostgreSQL backend with a cheaper health check (``ENGINE = "servicekit.db.postgresql"``).

With ``CONN_HEALTH_CHECKS`` Django runs ``SELECT 1`` before the first query of *every* request: on
the vote path that was a whole extra round trip (3 % of the web process's CPU and ~0.2 ms of latency
per vote, measured). This backend skips it when the same connection finished a request without
errors less than ``HEALTH_CHECK_GRACE`` seconds ago (``DATABASES[...]["HEALTH_CHECK_GRACE"]``,
default 1 s): a busy worker checks nothing, an idle one checks as before.

A connection that died inside the grace (a PostgreSQL restart) fails its next query with
``OperationalError``: ``servicekit.errors`` answers that request 503 problem+json with ``Retry-After``
(never a 500), Django closes the connection at the end of the request, and the next one reconnects.
"""

from __future__ import annotations

import time

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    _healthy_at = float("-inf")
    health_check_done: bool  # set by Django's BaseDatabaseWrapper

    @property
    def health_check_grace(self) -> float:
        return float(self.settings_dict.get("HEALTH_CHECK_GRACE", 1.0))

    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and not self.health_check_done
            and time.monotonic() - self._healthy_at < self.health_check_grace
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def close_if_unusable_or_obsolete(self) -> None:
        # Called by Django at the start and end of every request.
        clean = self.connection is not None and not self.errors_occurred and not self.needs_rollback
        super().close_if_unusable_or_obsolete()
        if clean and self.connection is not None:
            self._healthy_at = time.monotonic()

    def close(self) -> None:
        self._healthy_at = float("-inf")
        super().close()
