"""One statement run once more on a connection that died since its last use.

``servicekit.db.postgresql`` skips the health check of a connection that finished a request cleanly in the last
second, so a connection that died since (a PostgreSQL restart, a terminated backend) fails its next statement
with ``OperationalError``. Where that statement runs on its own in autocommit, a new connection can simply run it
again: it either happened completely or not at all. Inside a transaction the work so far is lost with the
connection, so the error is raised (``servicekit.errors`` answers it 503 with ``Retry-After``)::

    row, again = reopening_once(PollReplica.objects.filter(pk=poll_id).values_list("status").first)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError, connection

T = TypeVar("T")


def reopening_once(run: Callable[[], T]) -> tuple[T, bool]:
    """``(run(), False)``; if it raised ``OperationalError`` outside a transaction, the connection is closed and
    ``run`` called once more: ``(its result, True)``. The caller decides what a second run means (a statement that
    may have committed before the connection broke runs twice)."""
    try:
        return run(), False
    except OperationalError:
        if connection.in_atomic_block:
            raise
        connection.close()
        return run(), True
