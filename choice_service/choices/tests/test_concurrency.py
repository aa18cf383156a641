"""Races decided by the database, with real concurrent transactions (threads, one connection each)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from choices.models import Choice
from choices.tests.factories import PollReplicaFactory
from servicekit.testing import bearer, make_access_token
from servicekit.testing_fixtures import OWNER_ID

pytestmark = pytest.mark.django_db(transaction=True)


def _concurrently(count: int, request) -> list[int]:
    from rest_framework.test import APIClient

    barrier = threading.Barrier(count)
    statuses: list[int] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        client = APIClient()
        client.credentials(**bearer(make_access_token(OWNER_ID, "owner")))
        try:
            barrier.wait()
            status = request(client, index)
            with lock:
                statuses.append(status)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def test_twenty_choice_cap_holds_under_concurrent_creates():
    poll = PollReplicaFactory(owner_id=OWNER_ID, status="draft")
    Choice.objects.bulk_create(Choice(poll_id=poll.id, text=f"c{i}", position=i) for i in range(17))

    def create(client, index: int) -> int:
        return client.post(
            "/api/v1/choices/", {"poll": str(poll.id), "text": f"new {index}"}, format="json"
        ).status_code

    statuses = _concurrently(8, create)
    assert statuses == [201] * 3 + [409] * 5
    assert Choice.objects.filter(poll_id=poll.id).count() == 20


def test_same_text_created_concurrently_exists_once():
    poll = PollReplicaFactory(owner_id=OWNER_ID, status="draft")

    def create(client, index: int) -> int:
        text = "Tea" if index % 2 else "TEA"
        return client.post("/api/v1/choices/", {"poll": str(poll.id), "text": text}, format="json").status_code

    statuses = _concurrently(4, create)
    assert statuses == [201, 409, 409, 409]
    assert Choice.objects.filter(poll_id=poll.id).count() == 1
