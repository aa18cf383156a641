"""Consumers: poll replica from poll.* and tallies from vote.*, applied once per event id (inbox)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError

from choices.models import Choice, PollReplica
from choices.tests.factories import ChoiceFactory, PollReplicaFactory
from servicekit.events import Event
from servicekit.events.inbox import apply_event

pytestmark = pytest.mark.django_db


def make_event(event_type: str, data: dict, *, occurred: datetime | None = None, producer: str = "votes") -> Event:
    occurred = occurred or datetime.now(UTC)
    return Event(
        id=str(uuid.uuid4()),
        type=event_type,
        occurred_at=occurred.isoformat().replace("+00:00", "Z"),
        producer=producer,
        aggregate_id=str(data["id"]),
        data=data,
    )


def poll_data(poll_id, status="draft", owner_id=7) -> dict:
    return {"id": str(poll_id), "owner_id": owner_id, "status": status, "closes_at": None, "question": "Q?"}


def vote_data(choice, **extra) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "poll_id": str(choice.poll_id),
        "choice_id": str(choice.id),
        "voter_id": 5,
        **extra,
    }


def test_poll_events_create_and_update_the_replica():
    poll_id = uuid.uuid4()
    apply_event(make_event("poll.created", poll_data(poll_id), producer="polls"))
    replica = PollReplica.objects.get(pk=poll_id)
    assert (replica.owner_id, replica.status) == (7, "draft")
    apply_event(make_event("poll.opened", poll_data(poll_id, "open"), producer="polls"))
    replica.refresh_from_db()
    assert replica.status == "open"


def test_an_older_poll_event_does_not_roll_the_replica_back():
    poll_id = uuid.uuid4()
    now = datetime.now(UTC)
    apply_event(make_event("poll.closed", poll_data(poll_id, "closed"), occurred=now, producer="polls"))
    apply_event(
        make_event("poll.opened", poll_data(poll_id, "open"), occurred=now - timedelta(seconds=5), producer="polls")
    )
    assert PollReplica.objects.get(pk=poll_id).status == "closed"


def test_poll_deleted_removes_its_choices_and_stays_deleted():
    poll = PollReplicaFactory(status="draft")
    ChoiceFactory(poll_id=poll.id)
    apply_event(make_event("poll.deleted", poll_data(poll.id, "draft", poll.owner_id), producer="polls"))
    assert not Choice.objects.filter(poll_id=poll.id).exists()
    apply_event(make_event("poll.updated", poll_data(poll.id, "draft", poll.owner_id), producer="polls"))
    assert PollReplica.objects.get(pk=poll.id).status == "deleted"


def test_vote_cast_increments_once_even_when_redelivered():
    choice = ChoiceFactory(poll_id=PollReplicaFactory(status="open").id)
    event = make_event("vote.cast", vote_data(choice))
    apply_event(event)
    apply_event(event)  # duplicate delivery
    choice.refresh_from_db()
    assert choice.votes == 1
    apply_event(make_event("vote.cast", vote_data(choice)))
    choice.refresh_from_db()
    assert choice.votes == 2


def test_vote_changed_moves_one_vote():
    poll = PollReplicaFactory(status="open")
    before = ChoiceFactory(poll_id=poll.id, votes=2)
    after = ChoiceFactory(poll_id=poll.id, votes=0)
    event = make_event("vote.changed", vote_data(after, previous_choice_id=str(before.id)))
    apply_event(event)
    apply_event(event)
    before.refresh_from_db()
    after.refresh_from_db()
    assert (before.votes, after.votes) == (1, 1)


def test_vote_retracted_decrements():
    choice = ChoiceFactory(poll_id=PollReplicaFactory(status="open").id, votes=1)
    apply_event(make_event("vote.retracted", vote_data(choice)))
    choice.refresh_from_db()
    assert choice.votes == 0


def test_a_tally_never_goes_negative_the_handler_fails_and_is_retried_later():
    choice = ChoiceFactory(poll_id=PollReplicaFactory(status="open").id, votes=0)
    event = make_event("vote.retracted", vote_data(choice))
    with pytest.raises(IntegrityError):
        apply_event(event)
    choice.refresh_from_db()
    assert choice.votes == 0
    # The cast arrives; the retried retraction now applies (it was not recorded as handled).
    apply_event(make_event("vote.cast", vote_data(choice)))
    apply_event(event)
    choice.refresh_from_db()
    assert choice.votes == 0


def test_tally_event_for_an_unknown_choice_is_harmless():
    ghost = Choice(id=uuid.uuid4(), poll_id=uuid.uuid4())
    apply_event(make_event("vote.cast", vote_data(ghost)))
    assert not Choice.objects.exists()
