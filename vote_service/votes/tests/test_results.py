"""The results document and its cache generation (pure read/write of the cache, real Redis)."""

from __future__ import annotations

import uuid

import pytest

from votes.results import results_compute, results_get, results_invalidate
from votes.tests.factories import ChoiceReplicaFactory, PollReplicaFactory, VoteFactory

pytestmark = pytest.mark.django_db


def test_votes_for_a_choice_not_yet_in_the_replica_still_count():
    poll = PollReplicaFactory(status="open")
    known = ChoiceReplicaFactory(poll_id=poll.id)
    unknown = uuid.uuid4()
    VoteFactory(poll_id=poll.id, choice_id=unknown, voter_id=1)
    body = results_compute(poll_id=poll.id)
    assert body["total"] == 1
    assert body["choices"] == [{"choice": str(known.id), "votes": 0}, {"choice": str(unknown), "votes": 1}]


def test_deleted_choices_are_not_listed():
    poll = PollReplicaFactory(status="draft")
    ChoiceReplicaFactory(poll_id=poll.id, deleted=True)
    assert results_compute(poll_id=poll.id)["choices"] == []


def test_invalidate_makes_the_next_read_recompute():
    poll = PollReplicaFactory(status="open")
    choice = ChoiceReplicaFactory(poll_id=poll.id)
    assert results_get(poll_id=poll.id)["total"] == 0
    VoteFactory(poll_id=poll.id, choice_id=choice.id, voter_id=1)
    assert results_get(poll_id=poll.id)["total"] == 0  # cached
    results_invalidate(poll_id=poll.id)
    assert results_get(poll_id=poll.id)["total"] == 1
    VoteFactory(poll_id=poll.id, choice_id=choice.id, voter_id=2)
    results_invalidate(poll_id=poll.id)  # generation bumps again (incr path)
    assert results_get(poll_id=poll.id)["total"] == 2


def test_a_document_computed_before_a_write_is_never_served_after_it():
    from django.core.cache import cache

    poll = PollReplicaFactory(status="open")
    choice = ChoiceReplicaFactory(poll_id=poll.id)
    stale = results_compute(poll_id=poll.id)
    # A slow reader stores what it computed under the old generation after a write invalidated it.
    results_invalidate(poll_id=poll.id)
    cache.set(f"results:doc:{poll.id}", {"generation": 0, "results": stale})
    VoteFactory(poll_id=poll.id, choice_id=choice.id, voter_id=1)
    assert results_get(poll_id=poll.id)["total"] == 1


def test_cache_outage_degrades_to_the_database(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.1, "SOCKET_TIMEOUT": 0.1},
        }
    }
    poll = PollReplicaFactory(status="open")
    VoteFactory(poll_id=poll.id, choice_id=ChoiceReplicaFactory(poll_id=poll.id).id, voter_id=1)
    assert results_get(poll_id=poll.id)["total"] == 1
    results_invalidate(poll_id=poll.id)  # logs, does not raise
