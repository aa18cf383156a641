"""Consumers: poll.* and choice.* keep the replicas (once per event id, by version) and invalidate cached results."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from servicekit.events import Event
from servicekit.events.inbox import apply_event
from servicekit.testing_fixtures import assert_sessions_revoked_refuses_older_tokens
from votes.models import ChoiceReplica, PollReplica
from votes.results import results_get
from votes.tests.factories import ChoiceReplicaFactory, PollReplicaFactory

pytestmark = pytest.mark.django_db


def make_event(event_type: str, data: dict, *, version: int | None, occurred: datetime | None = None) -> Event:
    occurred = occurred or datetime.now(UTC)
    return Event(
        version=version,
        id=str(uuid.uuid4()),
        type=event_type,
        occurred_at=occurred.isoformat().replace("+00:00", "Z"),
        producer=event_type.split(".")[0] + "s",
        aggregate_id=str(data["id"]),
        data=data,
    )


def poll_data(poll_id, status="open", closes_at=None) -> dict:
    return {"id": str(poll_id), "owner_id": 7, "status": status, "closes_at": closes_at, "question": "Q?"}


def choice_data(choice_id, poll_id, position=0) -> dict:
    return {"id": str(choice_id), "poll_id": str(poll_id), "text": "T", "position": position}


def test_poll_events_keep_the_replica():
    poll_id = uuid.uuid4()
    apply_event(make_event("poll.created", poll_data(poll_id, "draft"), version=1))
    closes = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    apply_event(make_event("poll.opened", poll_data(poll_id, "open", closes), version=2))
    replica = PollReplica.objects.get(pk=poll_id)
    assert replica.status == "open" and replica.closes_at is not None and replica.owner_id == 7
    assert replica.version == 2


def test_older_poll_event_is_ignored():
    poll_id = uuid.uuid4()
    apply_event(make_event("poll.closed", poll_data(poll_id, "closed"), version=3))
    apply_event(make_event("poll.opened", poll_data(poll_id, "open"), version=2))
    replica = PollReplica.objects.get(pk=poll_id)
    assert (replica.status, replica.version) == ("closed", 3)


def test_an_event_of_the_version_already_held_changes_nothing():
    poll = PollReplicaFactory(status="open", version=2)
    apply_event(make_event("poll.closed", poll_data(poll.id, "closed"), version=2))
    assert PollReplica.objects.get(pk=poll.id).status == "open"


def test_an_event_without_a_version_is_ignored():
    poll = PollReplicaFactory(status="open", version=2)
    apply_event(make_event("poll.closed", poll_data(poll.id, "closed"), version=None))
    assert PollReplica.objects.get(pk=poll.id).status == "open"


def test_poll_deleted_is_a_tombstone():
    poll = PollReplicaFactory(status="draft", version=1)
    apply_event(make_event("poll.deleted", poll_data(poll.id, "draft"), version=3))
    apply_event(make_event("poll.updated", poll_data(poll.id, "draft"), version=2))
    assert PollReplica.objects.get(pk=poll.id).status == "deleted"


def test_choice_events_keep_the_replica_once():
    poll = PollReplicaFactory(status="draft")
    choice_id = uuid.uuid4()
    created = make_event("choice.created", choice_data(choice_id, poll.id, 2), version=1)
    apply_event(created)
    apply_event(created)
    replica = ChoiceReplica.objects.get(pk=choice_id)
    assert (replica.poll_id, replica.position, replica.deleted) == (poll.id, 2, False)
    apply_event(make_event("choice.updated", choice_data(choice_id, poll.id, 0), version=2))
    assert ChoiceReplica.objects.get(pk=choice_id).position == 0
    apply_event(make_event("choice.deleted", choice_data(choice_id, poll.id, 0), version=3))
    assert ChoiceReplica.objects.get(pk=choice_id).deleted
    # A late update (older version) does not bring the deleted choice back.
    apply_event(make_event("choice.updated", choice_data(choice_id, poll.id, 5), version=2))
    replica = ChoiceReplica.objects.get(pk=choice_id)
    assert replica.deleted and replica.position == 0 and replica.version == 3


def test_choice_events_invalidate_cached_results(django_capture_on_commit_callbacks):
    poll = PollReplicaFactory(status="draft")
    first = ChoiceReplicaFactory(poll_id=poll.id, position=0)
    assert [c["choice"] for c in results_get(poll_id=poll.id)["choices"]] == [str(first.id)]
    added = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        apply_event(make_event("choice.created", choice_data(added, poll.id, 1), version=1))
    assert [c["choice"] for c in results_get(poll_id=poll.id)["choices"]] == [str(first.id), str(added)]
    with django_capture_on_commit_callbacks(execute=True):
        apply_event(make_event("choice.deleted", choice_data(first.id, poll.id, 0), version=2))
    assert [c["choice"] for c in results_get(poll_id=poll.id)["choices"]] == [str(added)]


def test_cached_results_without_an_event_stay_cached():
    poll = PollReplicaFactory(status="open")
    results_get(poll_id=poll.id)
    ChoiceReplicaFactory(poll_id=poll.id)
    assert results_get(poll_id=poll.id)["choices"] == []


def test_a_revocation_of_sessions_refuses_the_users_older_tokens_here_too(client_for):
    assert_sessions_revoked_refuses_older_tokens(client_for, "/api/v2/votes/")
