"""Votes API v2: changing a vote, filtering, cursor pagination, ETag/304, Idempotency-Key."""

from __future__ import annotations

import pytest

from servicekit.events.models import OutboxEvent
from votes.models import PollReplica, Vote
from votes.tests.conftest import VOTER_ID, choices_of
from votes.tests.factories import ChoiceReplicaFactory, PollReplicaFactory, VoteFactory

pytestmark = pytest.mark.django_db

VOTES = "/api/v2/votes/"


def cast(client, poll, choice, **headers):
    return client.post(VOTES, {"poll": str(poll.id), "choice": str(choice.id)}, format="json", **headers)


@pytest.fixture
def my_vote(voter, open_poll) -> dict:
    return cast(voter, open_poll, choices_of(open_poll)[0]).json()


def test_change_moves_the_vote_and_announces_it(voter, open_poll, my_vote):
    old, new = choices_of(open_poll)[:2]
    response = voter.patch(f"{VOTES}{my_vote['id']}/", {"choice": str(new.id)}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["choice"] == str(new.id) and response.json()["id"] == my_vote["id"]
    assert Vote.objects.get().choice_id == new.id
    event = OutboxEvent.objects.get(event_type="vote.changed")
    assert event.envelope["data"] == {
        "id": my_vote["id"],
        "poll_id": str(open_poll.id),
        "choice_id": str(new.id),
        "previous_choice_id": str(old.id),
        "voter_id": VOTER_ID,
    }
    # The vote's version moves with each change; the event carries the version after it.
    assert Vote.objects.get().version == event.envelope["version"] == 2
    voter.patch(f"{VOTES}{my_vote['id']}/", {"choice": str(old.id)}, format="json")
    assert Vote.objects.get().version == 3
    changes = OutboxEvent.objects.filter(event_type="vote.changed").order_by("id")
    assert [event.envelope["version"] for event in changes] == [2, 3]


def test_change_to_the_same_choice_changes_nothing(voter, open_poll, my_vote):
    response = voter.patch(f"{VOTES}{my_vote['id']}/", {"choice": my_vote["choice"]}, format="json")
    assert response.status_code == 200
    assert not OutboxEvent.objects.filter(event_type="vote.changed").exists()
    assert Vote.objects.get().version == 1


def test_change_to_a_choice_of_another_poll_is_422(voter, my_vote):
    foreign = ChoiceReplicaFactory(poll_id=PollReplicaFactory(status="open").id)
    response = voter.patch(f"{VOTES}{my_vote['id']}/", {"choice": str(foreign.id)}, format="json")
    assert response.status_code == 422
    assert str(Vote.objects.get().choice_id) == my_vote["choice"]


def test_change_after_close_is_422(voter, open_poll, my_vote):
    PollReplica.objects.filter(pk=open_poll.pk).update(status="closed")
    new = choices_of(open_poll)[1]
    assert voter.patch(f"{VOTES}{my_vote['id']}/", {"choice": str(new.id)}, format="json").status_code == 422


def test_only_the_voter_changes_a_vote(other, operator, open_poll, my_vote):
    new = choices_of(open_poll)[1]
    for client in (other, operator):
        response = client.patch(f"{VOTES}{my_vote['id']}/", {"choice": str(new.id)}, format="json")
        assert response.status_code == 404
    assert str(Vote.objects.get().choice_id) == my_vote["choice"]


def test_change_ignores_voter_and_poll(voter, open_poll, my_vote):
    new = choices_of(open_poll)[1]
    elsewhere = PollReplicaFactory(status="open")
    response = voter.patch(
        f"{VOTES}{my_vote['id']}/", {"choice": str(new.id), "voter": 1, "poll": str(elsewhere.id)}, format="json"
    )
    assert response.status_code == 200
    vote = Vote.objects.get()
    assert (vote.voter_id, vote.poll_id) == (VOTER_ID, open_poll.id)


def test_change_needs_a_valid_choice(voter, my_vote):
    assert voter.patch(f"{VOTES}{my_vote['id']}/", {}, format="json").status_code == 400
    assert voter.patch(f"{VOTES}{my_vote['id']}/", {"choice": "x"}, format="json").status_code == 400


def test_filter_by_poll_and_cursor_pages(voter, open_poll):
    polls = [PollReplicaFactory(status="open") for _ in range(3)]
    for poll in polls:
        VoteFactory(poll_id=poll.id, choice_id=ChoiceReplicaFactory(poll_id=poll.id).id, voter_id=VOTER_ID)
    body = voter.get(VOTES, {"poll": str(polls[1].id)}).json()
    assert [item["poll"] for item in body["results"]] == [str(polls[1].id)]
    seen, url = [], f"{VOTES}?page_size=2"
    while url:
        page = voter.get(url).json()
        assert set(page) == {"next", "previous", "results"}
        seen += [item["id"] for item in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 3


def test_etag_304_on_results_and_a_vote_changes_it(voter, anon, open_poll, django_capture_on_commit_callbacks):
    url = f"/api/v2/results/{open_poll.id}/"
    first = anon.get(url)
    etag = first["ETag"]
    assert anon.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
    with django_capture_on_commit_callbacks(execute=True):
        cast(voter, open_poll, choices_of(open_poll)[0])
    after = anon.get(url, HTTP_IF_NONE_MATCH=etag)
    assert after.status_code == 200 and after["ETag"] != etag and after.json()["total"] == 1


def test_etag_304_on_own_votes(voter, my_vote):
    first = voter.get(f"{VOTES}{my_vote['id']}/")
    assert voter.get(f"{VOTES}{my_vote['id']}/", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304


def test_idempotency_key_replays_a_vote(voter, open_poll):
    choice = choices_of(open_poll)[0]
    first = cast(voter, open_poll, choice, HTTP_IDEMPOTENCY_KEY="vote-1")
    replay = cast(voter, open_poll, choice, HTTP_IDEMPOTENCY_KEY="vote-1")
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
    assert Vote.objects.count() == 1 and OutboxEvent.objects.count() == 1
    # Without the key the retry is a second vote: 409.
    assert cast(voter, open_poll, choice).status_code == 409


def test_idempotency_key_reused_with_another_body_is_422(voter, open_poll):
    first, second = choices_of(open_poll)[:2]
    cast(voter, open_poll, first, HTTP_IDEMPOTENCY_KEY="vote-2")
    response = cast(voter, open_poll, second, HTTP_IDEMPOTENCY_KEY="vote-2")
    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"


def test_idempotency_keys_of_different_users_do_not_meet(voter, other, open_poll):
    choice = choices_of(open_poll)[0]
    assert cast(voter, open_poll, choice, HTTP_IDEMPOTENCY_KEY="same").status_code == 201
    assert cast(other, open_poll, choice, HTTP_IDEMPOTENCY_KEY="same").status_code == 201
    assert Vote.objects.count() == 2


def test_poll_filter_malformed_is_400_empty_is_no_filter(voter, my_vote):
    response = voter.get(VOTES, {"poll": "nope"})
    assert response.status_code == 400 and "poll" in response.json()["errors"]
    assert [item["id"] for item in voter.get(VOTES, {"poll": ""}).json()["results"]] == [my_vote["id"]]
