"""Voters keep voting while polls_service seals the poll: once the seal has answered, no vote commits.

Real PostgreSQL connections, one per thread (each request through the real view and hot path). A
trigger makes every vote insert take 50 ms after the poll's row was read, so a vote that
saw the poll open and committed after the seal (a gate that does not hold) would be caught by the
ledger read right after the seal answered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection
from rest_framework.test import APIClient

from servicekit.events.models import OutboxEvent
from servicekit.testing import bearer, make_access_token, service_credentials
from votes.models import Vote
from votes.tests.factories import ChoiceReplicaFactory, PollReplicaFactory

pytestmark = pytest.mark.django_db(transaction=True)

VOTERS = 8
TRIES_PER_VOTER = 80  # each try is a new user, so every try before the seal can be a 201
DEADLINE_SECONDS = 60


@pytest.fixture
def slow_vote_inserts():
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION test_slow_vote() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_slow_vote BEFORE INSERT ON votes_vote FOR EACH ROW EXECUTE FUNCTION test_slow_vote()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS test_slow_vote ON votes_vote")
            cursor.execute("DROP FUNCTION IF EXISTS test_slow_vote()")


def _wait_for(condition: Callable[[], bool], deadline: float) -> bool:
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks across connections need PostgreSQL")
def test_no_vote_commits_after_the_seal_answered(slow_vote_inserts):
    poll = PollReplicaFactory(status="open", version=2)
    choices = [ChoiceReplicaFactory(poll_id=poll.id) for _ in range(3)]
    tokens = [
        [make_access_token(10_000 + v * TRIES_PER_VOTER + n, "voter") for n in range(TRIES_PER_VOTER)]
        for v in range(VOTERS)
    ]
    deadline = time.monotonic() + DEADLINE_SECONDS
    lock = threading.Lock()
    outcomes: list[tuple[bool, int, str | None]] = []  # (started after the seal answered, status, vote id)
    sealed, stop = threading.Event(), threading.Event()
    seal: dict = {}

    def count(predicate: Callable[[tuple[bool, int, str | None]], bool]) -> int:
        with lock:
            return sum(1 for outcome in outcomes if predicate(outcome))

    def vote(voter: int) -> None:
        client = APIClient()
        try:
            for n, token in enumerate(tokens[voter]):
                if stop.is_set():
                    break
                after_seal = sealed.is_set()
                client.credentials(**bearer(token))
                choice = choices[(voter + n) % len(choices)]
                payload = {"poll": str(poll.id), "choice": str(choice.id)}
                response = client.post("/api/v2/votes/", payload, format="json")
                body = response.json()
                detail = body.get("id") if response.status_code == 201 else body.get("type")
                with lock:
                    outcomes.append((after_seal, response.status_code, detail))
        finally:
            connection.close()

    def close() -> None:
        client = APIClient()
        client.credentials(**service_credentials("polls"))
        try:
            _wait_for(lambda: count(lambda o: o[1] == 201) >= 20, deadline)  # votes are flowing
            response = client.put(
                f"/internal/polls/{poll.id}/state/",
                {"version": 3, "owner_id": poll.owner_id, "status": "closed", "closes_at": None},
                format="json",
            )
            sealed.set()
            # What had committed when the seal answered (a fresh snapshot on this thread's connection).
            seal["status"], seal["body"] = response.status_code, response.json()
            seal["committed"] = {str(i) for i in Vote.objects.filter(poll_id=poll.id).values_list("id", flat=True)}
            # Voters keep trying for a while after the seal.
            _wait_for(lambda: count(lambda o: o[0]) >= 5 * VOTERS, deadline)
        finally:
            stop.set()
            connection.close()

    threads = [threading.Thread(target=vote, args=(v,)) for v in range(VOTERS)] + [threading.Thread(target=close)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_SECONDS + 10)
        assert not thread.is_alive()

    assert seal["status"] == 200 and seal["body"]["status"] == "closed", seal
    accepted = {vote_id for _, status, vote_id in outcomes if status == 201}
    after = [(status, detail) for started_after, status, detail in outcomes if started_after]
    assert len(accepted) >= 20 and len(after) >= 5 * VOTERS  # the seal really happened under load
    # Every request that started after the seal answered was refused as not open.
    assert {status for status, _ in after} == {422}, after[:5]
    assert all(detail.endswith("/poll-not-open") for _, detail in after)
    # In the database: every vote there had committed when the seal answered, and each is a 201.
    ledger = {str(i) for i in Vote.objects.filter(poll_id=poll.id).values_list("id", flat=True)}
    assert ledger == seal["committed"] == accepted
    assert OutboxEvent.objects.filter(event_type="vote.cast").count() == len(ledger)
    assert all(status in (201, 422) for _, status, _ in outcomes)
