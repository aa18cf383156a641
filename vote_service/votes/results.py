"""Results of a poll (``{poll, total, choices: [{choice, votes}], as_of}``), served from the cache.

Every vote write and every poll/choice event invalidates a poll's results after commit. Invalidation
bumps a per-poll generation instead of deleting, and a cached document remembers the generation it was
computed under: a reader that computed from data older than the last write can store its document,
but nobody will serve it. A read is one cache round trip (generation and document together).
A cache outage degrades to computing from the database, never to an error.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from servicekit import redis_direct
from votes.models import ChoiceReplica, Vote

logger = logging.getLogger(__name__)


def _keys(poll_id: uuid.UUID | str) -> tuple[str, str]:
    return f"results:gen:{poll_id}", f"results:doc:{poll_id}"


def results_compute(*, poll_id: uuid.UUID | str) -> dict[str, Any]:
    """Count the ledger: every known choice of the poll in display order, zeros included."""
    counts = dict(Vote.objects.filter(poll_id=poll_id).values_list("choice_id").annotate(n=Count("id")).order_by())
    choices = []
    for choice_id in ChoiceReplica.objects.filter(poll_id=poll_id, deleted=False).values_list("id", flat=True):
        choices.append({"choice": str(choice_id), "votes": counts.pop(choice_id, 0)})
    # Votes for a choice this replica has not heard of yet still count (and show) in the results.
    for choice_id in sorted(counts, key=str):
        choices.append({"choice": str(choice_id), "votes": counts[choice_id]})
    return {
        "poll": str(poll_id),
        "total": sum(item["votes"] for item in choices),
        "choices": choices,
        "as_of": timezone.now().isoformat().replace("+00:00", "Z"),
    }


def results_get(*, poll_id: uuid.UUID | str) -> dict[str, Any]:
    """The poll's results from the cache, computed and stored on a miss."""
    gen_key, doc_key = _keys(poll_id)
    try:
        cached = cache.get_many([gen_key, doc_key])
    except Exception:  # noqa: BLE001 - the cache is an optimisation
        logger.warning("results cache unavailable", exc_info=True)
        return results_compute(poll_id=poll_id)
    generation = cached.get(gen_key, 0)
    doc = cached.get(doc_key)
    if doc is not None and doc.get("generation") == generation:
        return doc["results"]
    results = results_compute(poll_id=poll_id)
    try:
        cache.set(doc_key, {"generation": generation, "results": results}, settings.RESULTS_CACHE_SECONDS)
    except Exception:  # noqa: BLE001
        logger.warning("results cache unavailable", exc_info=True)
    return results


def results_invalidate(*, poll_id: uuid.UUID | str) -> None:
    """Make the cached results of a poll stale (call it from ``transaction.on_commit``)."""
    gen_key, _ = _keys(poll_id)
    try:
        redis = getattr(getattr(cache, "client", None), "get_client", None)
        if redis is not None:
            # django-redis: one plain INCR (it creates the key at 1), read back as an int by django-redis. It
            # runs after every vote's commit, on this thread's own connection; the reply is read before the
            # vote's 201 leaves, so a results read after it sees the new generation (read-your-write).
            redis_direct.execute(redis(write=True), "INCR", cache.make_key(gen_key))
            return
        try:
            cache.incr(gen_key)
        except ValueError:  # no generation yet
            if not cache.add(gen_key, 1, timeout=None):
                cache.incr(gen_key)
    except Exception:  # noqa: BLE001 - a short TTL bounds staleness if the cache is down
        logger.warning("results cache invalidation failed", extra={"poll_id": str(poll_id)}, exc_info=True)


def results_invalidate_on_commit(*, poll_id: uuid.UUID | str) -> None:
    from django.db import transaction

    transaction.on_commit(lambda: results_invalidate(poll_id=poll_id))
