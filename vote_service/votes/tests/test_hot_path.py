"""The vote path's database work: on PostgreSQL one statement (check + vote + outbox); the ORM path on
other databases (SQLite) reads both replicas in one query, then inserts the vote and its event."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from servicekit import sessions
from servicekit.events.models import OutboxEvent
from servicekit.testing_fixtures import terminate_database_session
from votes.models import Vote
from votes.services import _poll_policy, _settled_policies
from votes.tests.conftest import choices_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def revocations_loaded(settings):
    """The process's copy of ended sessions is loaded once per refresh interval (0.5 s), not per vote:
    load it before counting, and keep it for the test."""
    settings.SERVICEKIT = {**settings.SERVICEKIT, "SESSION_REVOCATION_REFRESH_SECONDS": 3600}
    sessions.revoked(user_id=0, claims={})


def _statements(context: CaptureQueriesContext) -> list[str]:
    # Savepoints appear only because the test itself runs inside a transaction.
    return [q["sql"] for q in context.captured_queries if "SAVEPOINT" not in q["sql"].upper()]


def test_an_open_polls_voter_policy_is_read_once_per_process(client_for, open_poll):
    choice = choices_of(open_poll)[0]
    counts = []
    for voter_id in (501, 502):
        with CaptureQueriesContext(connection) as context:
            body = {"poll": str(open_poll.id), "choice": str(choice.id)}
            assert client_for(voter_id).post("/api/v1/votes/", body, format="json").status_code == 201
        policy_reads = [sql for sql in _statements(context) if '"voter_policy"' in sql]
        counts.append(len(policy_reads))
    assert counts == [1, 0]


def test_casting_a_vote_with_warm_replicas(voter, open_poll, settings):
    settings.POLLS_INTERNAL_URL = settings.CHOICE_INTERNAL_URL = "http://127.0.0.1:9"  # any call would fail
    choice = choices_of(open_poll)[0]
    _poll_policy(open_poll.id)  # the open poll's voter policy, read once per process
    with CaptureQueriesContext(connection) as context:
        response = voter.post("/api/v1/votes/", {"poll": str(open_poll.id), "choice": str(choice.id)}, format="json")
    assert response.status_code == 201
    statements = _statements(context)
    if connection.vendor == "postgresql":
        assert len(statements) == 1, statements
        (sql,) = statements
        assert sql.lstrip().startswith("WITH poll AS")
        assert "FOR SHARE" in sql and "votes_pollreplica" in sql and "votes_choicereplica" in sql
        assert 'INSERT INTO "votes_vote"' in sql and "ON CONFLICT (poll_id, voter_id) DO NOTHING" in sql
        assert 'INSERT INTO "servicekit_outbox_event"' in sql
    else:
        assert len(statements) == 3, statements
        assert statements[0].startswith("SELECT") and "votes_pollreplica" in statements[0]
        assert "votes_choicereplica" in statements[0]  # both replicas in the one read
        assert statements[1].startswith('INSERT INTO "votes_vote"')
        assert statements[2].startswith('INSERT INTO "servicekit_outbox_event"')
    vote = Vote.objects.get()
    assert str(vote.id) == response.json()["id"] and vote.version == 1
    event = OutboxEvent.objects.get()
    assert (event.event_type, event.aggregate_id, event.sent_at) == ("vote.cast", str(vote.id), None)
    assert (event.attempts, event.last_error) == (0, "")
    envelope = event.envelope
    assert envelope["id"] == str(event.event_id) and envelope["type"] == "vote.cast"
    assert (envelope["producer"], envelope["aggregate_id"], envelope["version"]) == ("votes", str(vote.id), 1)
    assert envelope["occurred_at"].endswith("Z") and "traceparent" in envelope


def test_a_double_vote_costs_no_extra_read(voter, open_poll):
    choice = choices_of(open_poll)[0]
    voter.post("/api/v1/votes/", {"poll": str(open_poll.id), "choice": str(choice.id)}, format="json")
    with CaptureQueriesContext(connection) as context:
        response = voter.post("/api/v1/votes/", {"poll": str(open_poll.id), "choice": str(choice.id)}, format="json")
    assert response.status_code == 409
    # PostgreSQL: the one statement (ON CONFLICT inserted nothing). The ORM path: replica read + the
    # insert the constraint refused + a lookup (SQLite does not name the constraint).
    assert len(_statements(context)) == (1 if connection.vendor == "postgresql" else 3)
    assert Vote.objects.count() == 1 and OutboxEvent.objects.count() == 1


def test_an_accepted_vote_asks_for_a_relay_and_invalidates_results_on_commit(
    voter, open_poll, django_capture_on_commit_callbacks
):
    from servicekit.events.outbox import request_relay

    choice = choices_of(open_poll)[0]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = voter.post("/api/v1/votes/", {"poll": str(open_poll.id), "choice": str(choice.id)}, format="json")
    assert response.status_code == 201
    assert callbacks.count(request_relay) == 1 and len(callbacks) == 2  # the relay request + results invalidation
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        refused = voter.post("/api/v1/votes/", {"poll": str(open_poll.id), "choice": str(choice.id)}, format="json")
    assert refused.status_code == 409 and callbacks == []


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("closed", 422, "poll-not-open"),
        ("closes-at-passed", 422, "poll-not-open"),
        ("choice-of-another-poll", 422, "choice-not-in-poll"),
        ("deleted-poll", 422, "poll-not-found"),
    ],
)
def test_refusals_with_warm_replicas_cost_the_one_statement(voter, open_poll, case, status, code):
    from datetime import timedelta

    from django.utils import timezone

    from votes.models import PollReplica
    from votes.tests.factories import ChoiceReplicaFactory, PollReplicaFactory

    choice = choices_of(open_poll)[0]
    if case == "closed":
        PollReplica.objects.filter(pk=open_poll.pk).update(status="closed")
    elif case == "closes-at-passed":
        PollReplica.objects.filter(pk=open_poll.pk).update(closes_at=timezone.now() - timedelta(milliseconds=1))
    elif case == "choice-of-another-poll":
        choice = ChoiceReplicaFactory(poll_id=PollReplicaFactory(status="open").id)
    else:
        PollReplica.objects.filter(pk=open_poll.pk).update(status="deleted")
    _poll_policy(open_poll.id)  # warm, like the replicas
    with CaptureQueriesContext(connection) as context:
        response = voter.post("/api/v1/votes/", {"poll": str(open_poll.id), "choice": str(choice.id)}, format="json")
    assert response.status_code == status and response.json()["type"].endswith(f"/{code}")
    if connection.vendor == "postgresql":
        assert len(_statements(context)) == 1
    assert not Vote.objects.exists() and not OutboxEvent.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("policy", ["read", "warm"])  # the first statement: the policy read, or the vote's own
def test_a_vote_on_a_connection_lost_since_its_last_use_is_retried_once(open_poll, policy):
    from servicekit.principal import Principal
    from votes.services import vote_cast

    choice = choices_of(open_poll)[0]
    if policy == "warm":
        _poll_policy(open_poll.id)
    else:
        _settled_policies.pop(open_poll.id, None)
    terminate_database_session()
    vote = vote_cast(actor=Principal(id=4242, username="v"), poll_id=open_poll.id, choice_id=choice.id)
    assert Vote.objects.get().id == vote.id
    assert list(OutboxEvent.objects.values_list("aggregate_id", flat=True)) == [str(vote.id)]
