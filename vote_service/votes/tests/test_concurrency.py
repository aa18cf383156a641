"""A user voting twice at the same moment: the database's unique constraint lets exactly one through."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from servicekit.events.models import OutboxEvent
from servicekit.testing import bearer, make_access_token
from votes.models import Vote
from votes.tests.factories import ChoiceReplicaFactory, PollReplicaFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _vote_concurrently(poll, choices, *, user_id: int) -> list[int]:
    barrier = threading.Barrier(len(choices))
    statuses: list[int] = []
    lock = threading.Lock()

    def run(choice) -> None:
        client = APIClient()
        client.credentials(**bearer(make_access_token(user_id, "racer")))
        try:
            barrier.wait()
            response = client.post("/api/v1/votes/", {"poll": str(poll.id), "choice": str(choice.id)}, format="json")
            with lock:
                statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(choice,)) for choice in choices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def test_double_vote_from_two_threads_one_201_one_409_one_row():
    poll = PollReplicaFactory(status="open")
    a, b = ChoiceReplicaFactory(poll_id=poll.id), ChoiceReplicaFactory(poll_id=poll.id)
    assert _vote_concurrently(poll, [a, b], user_id=77) == [201, 409]
    assert Vote.objects.filter(poll_id=poll.id, voter_id=77).count() == 1
    assert OutboxEvent.objects.filter(event_type="vote.cast").count() == 1


def test_many_simultaneous_attempts_still_one_vote():
    poll = PollReplicaFactory(status="open")
    choice = ChoiceReplicaFactory(poll_id=poll.id)
    assert _vote_concurrently(poll, [choice] * 6, user_id=78) == [201] + [409] * 5
    assert Vote.objects.filter(poll_id=poll.id, voter_id=78).count() == 1
