"""The vote path's database work: one replica read, then one transaction of two inserts (vote + outbox)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from votes.tests.conftest import choices_of

pytestmark = pytest.mark.django_db


def _statements(context: CaptureQueriesContext) -> list[str]:
    # Savepoints appear only because the test itself runs inside a transaction.
    return [q["sql"] for q in context.captured_queries if "SAVEPOINT" not in q["sql"].upper()]


def test_casting_a_vote_with_warm_replicas(voter, open_poll, settings):
    settings.POLLS_INTERNAL_URL = settings.CHOICE_INTERNAL_URL = "http://127.0.0.1:9"  # any call would fail
    choice = choices_of(open_poll)[0]
    with CaptureQueriesContext(connection) as context:
        response = voter.post("/api/v1/votes/", {"poll": str(open_poll.id), "choice": str(choice.id)}, format="json")
    assert response.status_code == 201
    statements = _statements(context)
    assert len(statements) == 3, statements
    assert statements[0].startswith("SELECT") and "votes_pollreplica" in statements[0]
    assert "votes_choicereplica" in statements[0]  # both replicas in the one read
    assert statements[1].startswith('INSERT INTO "votes_vote"')
    assert statements[2].startswith('INSERT INTO "servicekit_outbox_event"')


def test_a_double_vote_costs_no_extra_read(voter, open_poll):
    choice = choices_of(open_poll)[0]
    voter.post("/api/v1/votes/", {"poll": str(open_poll.id), "choice": str(choice.id)}, format="json")
    with CaptureQueriesContext(connection) as context:
        response = voter.post("/api/v1/votes/", {"poll": str(open_poll.id), "choice": str(choice.id)}, format="json")
    assert response.status_code == 409
    # Replica read + the insert the constraint refused (SQLite does not name the constraint: one lookup more).
    assert len(_statements(context)) == (2 if connection.vendor == "postgresql" else 3)
