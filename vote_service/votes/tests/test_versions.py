"""Replicas ordered by version, never by clocks: late events, fetches racing events, skewed producers."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from servicekit.events.inbox import apply_event
from votes import services
from votes.models import ChoiceReplica, PollReplica, Vote
from votes.tests.conftest import OWNER_ID
from votes.tests.factories import ChoiceReplicaFactory, PollReplicaFactory
from votes.tests.test_events import choice_data, make_event, poll_data

pytestmark = pytest.mark.django_db

SKEW = timedelta(minutes=5)


def cast(client, poll_id, choice_id):
    return client.post("/api/v2/votes/", {"poll": str(poll_id), "choice": str(choice_id)}, format="json")


def poll_answer(poll_id, status, version) -> dict:
    return {"id": str(poll_id), "owner_id": OWNER_ID, "status": status, "closes_at": None, "version": version}


class _Racing:
    """A polls/choices client whose answer is overtaken by an event: the event is applied after the
    owner answered and before the answer is stored."""

    def __init__(self, real, event):
        self.real, self.event = real, event

    def get_json(self, path):
        answer = self.real().get_json(path)
        apply_event(self.event)
        return answer


def test_a_poll_fetch_overtaken_by_a_newer_event_keeps_the_event(voter, fake_polls, monkeypatch):
    poll_id, choice = uuid.uuid4(), uuid.uuid4()
    fake_polls.respond(f"/internal/polls/{poll_id}/", poll_answer(poll_id, "open", 2))
    closed = make_event("poll.closed", poll_data(poll_id, "closed"), version=3)
    monkeypatch.setattr(services, "polls_client", lambda real=services.polls_client: _Racing(real, closed))
    replica = services.poll_replica_get_or_fetch(poll_id=poll_id, warm_choices=False)
    assert (replica.status, replica.version) == ("closed", 3)
    ChoiceReplicaFactory(id=choice, poll_id=poll_id)
    assert cast(voter, poll_id, choice).json()["type"].endswith("/poll-not-open")


def test_a_late_event_after_a_fetch_changes_nothing(voter, fake_polls):
    poll_id, choice = uuid.uuid4(), uuid.uuid4()
    fake_polls.respond(f"/internal/polls/{poll_id}/", poll_answer(poll_id, "closed", 3))
    services.poll_replica_get_or_fetch(poll_id=poll_id, warm_choices=False)
    apply_event(make_event("poll.opened", poll_data(poll_id, "open"), version=2))  # the open's event, late
    assert PollReplica.objects.get(pk=poll_id).status == "closed"
    ChoiceReplicaFactory(id=choice, poll_id=poll_id)
    assert cast(voter, poll_id, choice).status_code == 422


def test_a_draft_refetch_overtaken_by_a_close_keeps_the_close(voter, fake_polls, monkeypatch):
    poll = PollReplicaFactory(status="draft", owner_id=OWNER_ID, version=1)
    choice = ChoiceReplicaFactory(poll_id=poll.id)
    fake_polls.respond(f"/internal/polls/{poll.id}/", poll_answer(poll.id, "open", 2))
    closed = make_event("poll.closed", poll_data(poll.id, "closed"), version=3)
    monkeypatch.setattr(services, "polls_client", lambda real=services.polls_client: _Racing(real, closed))
    response = cast(voter, poll.id, choice.id)
    assert response.status_code == 422 and response.json()["type"].endswith("/poll-not-open")
    assert (PollReplica.objects.get(pk=poll.id).status, PollReplica.objects.get(pk=poll.id).version) == ("closed", 3)
    assert not Vote.objects.exists()


def test_a_choice_fetch_overtaken_by_its_deletion_keeps_the_deletion(voter, open_poll, fake_choices, monkeypatch):
    choice_id = uuid.uuid4()
    fake_choices.respond(
        f"/internal/choices/{choice_id}/",
        {"id": str(choice_id), "poll_id": str(open_poll.id), "text": "T", "position": 3, "version": 1},
    )
    deleted = make_event("choice.deleted", choice_data(choice_id, open_poll.id, 3), version=2)
    monkeypatch.setattr(services, "choices_client", lambda real=services.choices_client: _Racing(real, deleted))
    response = cast(voter, open_poll.id, choice_id)
    assert response.status_code == 422 and response.json()["type"].endswith("/choice-not-in-poll")
    replica = ChoiceReplica.objects.get(pk=choice_id)
    assert replica.deleted and replica.version == 2


def _lifecycle(poll_id, skews):
    """created (v1), opened (v2), closed (v3), each stamped by a producer clock ``skew`` off."""
    now = datetime.now(UTC)
    return [
        make_event("poll.created", poll_data(poll_id, "draft"), version=1, occurred=now + skews[0]),
        make_event("poll.opened", poll_data(poll_id, "open"), version=2, occurred=now + skews[1]),
        make_event("poll.closed", poll_data(poll_id, "closed"), version=3, occurred=now + skews[2]),
    ]


@pytest.mark.parametrize("skews", [(SKEW, -SKEW, SKEW), (-SKEW, SKEW, -SKEW), (SKEW, SKEW, -SKEW)])
def test_skewed_producer_clocks_change_no_outcome(voter, skews):
    # Every delivery order of the three events, with occurred_at 5 minutes ahead or behind, ends closed.
    for order in itertools.permutations(range(3)):
        poll_id = uuid.uuid4()
        events = _lifecycle(poll_id, skews)
        for index in order:
            apply_event(events[index])
        replica = PollReplica.objects.get(pk=poll_id)
        assert (replica.status, replica.version) == ("closed", 3), order
    # Only created and opened delivered, in either order: open, and a vote is accepted.
    for order in ((0, 1), (1, 0)):
        poll_id = uuid.uuid4()
        events = _lifecycle(poll_id, skews)
        for index in order:
            apply_event(events[index])
        choice = ChoiceReplicaFactory(poll_id=poll_id)
        assert cast(voter, poll_id, choice.id).status_code == 201, order
        Vote.objects.filter(poll_id=poll_id).delete()


@pytest.mark.parametrize("skew", [SKEW, -SKEW])
def test_skewed_choice_events_change_no_outcome(voter, open_poll, skew):
    choice_id = uuid.uuid4()
    now = datetime.now(UTC)
    created = make_event("choice.created", choice_data(choice_id, open_poll.id), version=1, occurred=now + skew)
    deleted = make_event("choice.deleted", choice_data(choice_id, open_poll.id), version=2, occurred=now - skew)
    apply_event(deleted)
    apply_event(created)
    assert ChoiceReplica.objects.get(pk=choice_id).deleted
    assert cast(voter, open_poll.id, choice_id).status_code == 422
