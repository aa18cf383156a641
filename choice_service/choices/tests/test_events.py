"""Consumers: the poll replica from poll.* and the per-vote projection from vote.*, ordered by version.

Applied once per event id (inbox), and by version: duplicates, late and out-of-order events change
nothing, and the producer's clock (``occurred_at``) is never compared.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from choices.models import Choice, PollReplica, VoteProjection
from choices.tests.factories import ChoiceFactory, PollReplicaFactory, tally
from servicekit.events import Event
from servicekit.events.inbox import apply_batch, apply_event
from servicekit.testing_fixtures import assert_sessions_revoked_refuses_older_tokens

pytestmark = pytest.mark.django_db

SKEWS = (timedelta(minutes=5), timedelta(minutes=-5), timedelta(0))


def make_event(
    event_type: str,
    data: dict,
    *,
    version: int | None = 1,
    occurred: datetime | None = None,
    producer: str = "votes",
) -> Event:
    occurred = occurred or datetime.now(UTC)
    return Event(
        id=str(uuid.uuid4()),
        type=event_type,
        occurred_at=occurred.isoformat().replace("+00:00", "Z"),
        producer=producer,
        aggregate_id=str(data["id"]),
        data=data,
        version=version,
    )


def poll_data(poll_id, status="draft", owner_id=7) -> dict:
    return {"id": str(poll_id), "owner_id": owner_id, "status": status, "closes_at": None, "question": "Q?"}


def poll_event(event_type: str, poll_id, status: str, version: int, **kwargs) -> Event:
    return make_event(event_type, poll_data(poll_id, status), version=version, producer="polls", **kwargs)


def vote_data(choice, *, vote_id=None, **extra) -> dict:
    return {
        "id": str(vote_id or uuid.uuid4()),
        "poll_id": str(choice.poll_id),
        "choice_id": str(choice.id),
        "voter_id": 5,
        **extra,
    }


def cast(choice, vote_id, version=1) -> Event:
    return make_event("vote.cast", vote_data(choice, vote_id=vote_id), version=version)


def change(before, after, vote_id, version=2) -> Event:
    data = vote_data(after, vote_id=vote_id, previous_choice_id=str(before.id))
    return make_event("vote.changed", data, version=version)


def retract(choice, vote_id, version=2) -> Event:
    return make_event("vote.retracted", vote_data(choice, vote_id=vote_id), version=version)


def row(vote_id) -> VoteProjection:
    return VoteProjection.objects.get(pk=vote_id)


# --- poll replica ------------------------------------------------------------------------------------


def test_poll_events_create_and_update_the_replica():
    poll_id = uuid.uuid4()
    apply_event(poll_event("poll.created", poll_id, "draft", 1))
    replica = PollReplica.objects.get(pk=poll_id)
    assert (replica.owner_id, replica.status, replica.version) == (7, "draft", 1)
    apply_event(poll_event("poll.opened", poll_id, "open", 2))
    replica.refresh_from_db()
    assert (replica.status, replica.version) == ("open", 2)


def test_an_older_poll_event_does_not_roll_the_replica_back():
    poll_id = uuid.uuid4()
    apply_event(poll_event("poll.closed", poll_id, "closed", 3))
    apply_event(poll_event("poll.opened", poll_id, "open", 2))
    apply_event(poll_event("poll.updated", poll_id, "closed", 3))  # same version: nothing new
    replica = PollReplica.objects.get(pk=poll_id)
    assert (replica.status, replica.version) == ("closed", 3)


@pytest.mark.parametrize("skew", SKEWS, ids=["+5min", "-5min", "no skew"])
def test_poll_events_in_any_order_with_a_skewed_clock_end_at_the_newest_version(skew):
    now = datetime.now(UTC)
    history = [("poll.created", "draft"), ("poll.updated", "draft"), ("poll.opened", "open"), ("poll.closed", "closed")]
    for order in itertools.permutations(range(len(history))):
        poll_id = uuid.uuid4()
        for index in order:
            event_type, status = history[index]
            # The producer's clock runs off by ``skew`` for every other event: occurred_at decides nothing.
            occurred = now + (skew if index % 2 else -skew)
            apply_event(poll_event(event_type, poll_id, status, index + 1, occurred=occurred))
        replica = PollReplica.objects.get(pk=poll_id)
        assert (replica.status, replica.version) == ("closed", 4), order


def test_a_close_with_an_old_clock_still_wins_over_an_open_with_a_new_one():
    poll_id = uuid.uuid4()
    now = datetime.now(UTC)
    apply_event(poll_event("poll.opened", poll_id, "open", 2, occurred=now + timedelta(minutes=5)))
    apply_event(poll_event("poll.closed", poll_id, "closed", 3, occurred=now - timedelta(minutes=5)))
    assert PollReplica.objects.get(pk=poll_id).status == "closed"


def test_poll_deleted_removes_its_choices_and_votes_and_stays_deleted():
    poll = PollReplicaFactory(status="open", version=2)
    choice = ChoiceFactory(poll_id=poll.id, votes=2)
    other = ChoiceFactory(poll_id=PollReplicaFactory(status="open").id, votes=1)
    apply_event(poll_event("poll.deleted", poll.id, "open", 3))
    assert not Choice.objects.filter(poll_id=poll.id).exists()
    assert not VoteProjection.objects.filter(poll_id=poll.id).exists()
    assert tally(other) == 1
    apply_event(poll_event("poll.updated", poll.id, "open", 2))  # late
    assert PollReplica.objects.get(pk=poll.id).status == "deleted"
    assert not Choice.objects.filter(pk=choice.pk).exists()


def test_a_poll_event_without_a_version_fails_and_is_not_recorded():
    from servicekit.events.models import InboxEvent

    poll_id = uuid.uuid4()
    event = poll_event("poll.created", poll_id, "draft", 1)
    unversioned = Event(**{**event.__dict__, "version": None})
    with pytest.raises(ValueError, match="no version"):
        apply_event(unversioned)
    assert not PollReplica.objects.filter(pk=poll_id).exists()
    assert not InboxEvent.objects.filter(event_id=unversioned.id).exists()


# --- vote projection ----------------------------------------------------------------------------------


@pytest.fixture
def poll() -> PollReplica:
    return PollReplicaFactory(status="open")


@pytest.fixture
def tea(poll) -> Choice:
    return ChoiceFactory(poll_id=poll.id, text="Tea")


@pytest.fixture
def coffee(poll) -> Choice:
    return ChoiceFactory(poll_id=poll.id, text="Coffee")


def test_vote_cast_counts_once_even_when_redelivered(tea):
    event = cast(tea, uuid.uuid4())
    apply_event(event)
    apply_event(event)  # duplicate delivery (inbox)
    apply_event(Event(**{**event.__dict__, "id": str(uuid.uuid4())}))  # the same vote published twice
    assert tally(tea) == 1
    apply_event(cast(tea, uuid.uuid4()))
    assert tally(tea) == 2


def test_vote_changed_moves_one_vote(tea, coffee):
    vote_id = uuid.uuid4()
    apply_event(cast(tea, vote_id))
    event = change(tea, coffee, vote_id)
    apply_event(event)
    apply_event(event)
    assert (tally(tea), tally(coffee)) == (0, 1)
    assert (row(vote_id).choice_id, row(vote_id).version) == (coffee.id, 2)


def test_change_before_cast_ends_on_the_new_choice(tea, coffee):
    vote_id = uuid.uuid4()
    apply_event(change(tea, coffee, vote_id))
    apply_event(cast(tea, vote_id))  # late
    assert (tally(tea), tally(coffee)) == (0, 1)


def test_vote_retracted_uncounts(tea):
    vote_id = uuid.uuid4()
    apply_event(cast(tea, vote_id))
    apply_event(retract(tea, vote_id))
    assert tally(tea) == 0
    assert (row(vote_id).deleted, row(vote_id).version) == (True, 2)


def test_retract_before_cast_never_counts(tea):
    vote_id = uuid.uuid4()
    apply_event(retract(tea, vote_id))
    assert tally(tea) == 0
    apply_event(cast(tea, vote_id))  # the cast arrives late: the retraction is newer
    assert tally(tea) == 0
    assert row(vote_id).deleted


def test_retract_after_a_change_uncounts_the_new_choice(tea, coffee):
    vote_id = uuid.uuid4()
    events = [cast(tea, vote_id, 1), change(tea, coffee, vote_id, 2), retract(coffee, vote_id, 3)]
    for event in reversed(events):
        apply_event(event)
    assert (tally(tea), tally(coffee)) == (0, 0)


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_one_batch_with_cast_change_and_retract_of_a_vote_in_any_order(tea, coffee, order):
    vote_id, kept = uuid.uuid4(), uuid.uuid4()
    history = [cast(tea, vote_id, 1), change(tea, coffee, vote_id, 2), retract(coffee, vote_id, 3)]
    moved = [cast(tea, kept, 1), change(tea, coffee, kept, 2)]
    batch = [history[i] for i in order] + (moved if order[0] < order[1] else moved[::-1])
    apply_batch(batch)
    apply_batch(batch)  # redelivered
    assert (tally(tea), tally(coffee)) == (0, 1)
    assert row(vote_id).deleted and row(vote_id).version == 3
    assert (row(kept).choice_id, row(kept).deleted) == (coffee.id, False)


def test_a_batch_of_many_votes_is_one_projection_write(tea, coffee):
    votes = [uuid.uuid4() for _ in range(40)]
    batch = [cast(tea if i % 2 else coffee, vote_id) for i, vote_id in enumerate(votes)]
    batch += [retract(tea, votes[1]), change(coffee, tea, votes[0])]
    with CaptureQueriesContext(connection) as queries:
        apply_batch(batch)
    writes = [q["sql"] for q in queries.captured_queries if "choices_voteprojection" in q["sql"]]
    assert len(writes) == 1 and writes[0].startswith("INSERT")
    assert (tally(tea), tally(coffee)) == (20, 19)


def test_a_vote_for_a_choice_unknown_here_is_still_recorded(poll):
    ghost = Choice(id=uuid.uuid4(), poll_id=poll.id)
    vote_id = uuid.uuid4()
    apply_event(cast(ghost, vote_id))
    assert not Choice.objects.exists()
    recorded = row(vote_id)
    assert (recorded.choice_id, recorded.poll_id, recorded.deleted) == (ghost.id, poll.id, False)
    # The choice's own event arrives later (or the replica catches up): the vote counts.
    Choice.objects.create(id=ghost.id, poll_id=poll.id, text="Late")
    assert tally(ghost) == 1


# --- derived tallies ----------------------------------------------------------------------------------


def test_votes_of_every_api_version_equal_the_live_projection_rows(anon, poll, tea, coffee):
    for i in range(7):
        apply_event(cast(tea if i < 4 else coffee, vote_id := uuid.uuid4()))
        if i in (0, 5):
            apply_event(retract(tea if i < 4 else coffee, vote_id))
    live = {
        str(choice.id): VoteProjection.objects.filter(choice_id=choice.id, deleted=False).count()
        for choice in (tea, coffee)
    }
    assert live == {str(tea.id): 3, str(coffee.id): 2}
    for version in ("v1", "v2", "v3"):
        body = anon.get(f"/api/{version}/choices/", {"poll": str(poll.id)}).json()
        items = body["_embedded"]["choices"] if version == "v3" else body["results"]
        assert {item["id"]: item["votes"] for item in items} == live
        for choice_id, votes in live.items():
            assert anon.get(f"/api/{version}/choices/{choice_id}/").json()["votes"] == votes


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_a_list_costs_the_same_queries_for_any_number_of_choices(anon, version):
    def queries_for(count: int) -> int:
        poll = PollReplicaFactory(status="open")
        for _ in range(count):
            ChoiceFactory(poll_id=poll.id, votes=2)
        with CaptureQueriesContext(connection) as queries:
            response = anon.get(f"/api/{version}/choices/", {"poll": str(poll.id)})
        assert response.status_code == 200
        items = response.json()["_embedded"]["choices"] if version == "v3" else response.json()["results"]
        assert [item["votes"] for item in items] == [2] * count
        return len(queries.captured_queries)

    assert queries_for(1) == queries_for(8)


def test_a_revocation_of_sessions_refuses_the_users_older_tokens_here_too(client_for):
    assert_sessions_revoked_refuses_older_tokens(
        client_for, "/api/v2/choices/?poll=00000000-0000-0000-0000-000000000000"
    )
