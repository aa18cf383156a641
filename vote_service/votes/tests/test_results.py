"""The results document and its cache generation (pure read/write of the cache, real Redis)."""

from __future__ import annotations

import logging
import threading
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


def _generation(poll_id) -> int:
    from django.core.cache import cache

    return cache.get(f"results:gen:{poll_id}", 0)


def test_invalidation_survives_a_connection_the_server_dropped(caplog):
    from django.core.cache import cache

    from servicekit import redis_direct

    poll_id = uuid.uuid4()
    results_invalidate(poll_id=poll_id)
    client = cache.client.get_client(write=True)
    own = redis_direct.thread_connection(client)
    local_port = own._sock.getsockname()[1]
    (entry,) = [c for c in client.client_list() if c["addr"].endswith(f":{local_port}")]
    client.client_kill_filter(_id=entry["id"])
    with caplog.at_level(logging.WARNING, logger="votes.results"):
        results_invalidate(poll_id=poll_id)
    assert _generation(poll_id) == 2 and not caplog.records  # reconnected and sent once more


def test_threads_invalidate_on_connections_of_their_own():
    poll_id = uuid.uuid4()

    def invalidate_many() -> None:
        for _ in range(50):
            results_invalidate(poll_id=poll_id)

    threads = [threading.Thread(target=invalidate_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _generation(poll_id) == 200  # every increment applied, no reply read by another thread


@pytest.mark.django_db(transaction=True)
def test_a_vote_is_in_the_results_read_right_after_its_201(voter, anon, open_poll):
    """Really committed (no captured on-commit callbacks): the invalidation is done when the 201 is."""
    from votes.tests.conftest import choices_of

    choice = choices_of(open_poll)[0]
    assert anon.get(f"/api/v1/results/{open_poll.id}/").json()["total"] == 0  # cached at generation 0
    response = voter.post("/api/v1/votes/", {"poll": str(open_poll.id), "choice": str(choice.id)}, format="json")
    assert response.status_code == 201
    assert anon.get(f"/api/v1/results/{open_poll.id}/").json()["total"] == 1
