"""Votes and results API v1: every rule, status code and permission."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from servicekit.events.models import OutboxEvent
from votes.models import ChoiceReplica, PollReplica, Vote
from votes.tests.conftest import OWNER_ID, VOTER_ID, choices_of
from votes.tests.factories import ChoiceReplicaFactory, PollReplicaFactory, VoteFactory

pytestmark = pytest.mark.django_db

VOTES = "/api/v1/votes/"


def results_url(poll_id, version: str = "v1") -> str:
    return f"/api/{version}/results/{poll_id}/"


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def cast(client, poll, choice, **extra):
    return client.post(VOTES, {"poll": str(poll.id), "choice": str(choice.id), **extra}, format="json")


# --- casting --------------------------------------------------------------------------------------


def test_cast_records_the_callers_vote_and_its_event(voter, open_poll):
    choice = choices_of(open_poll)[1]
    response = cast(voter, open_poll, choice)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "poll", "choice", "voter", "created_at", "updated_at"}
    assert (body["poll"], body["choice"], body["voter"]) == (str(open_poll.id), str(choice.id), VOTER_ID)
    assert response["Location"] == f"/api/v1/votes/{body['id']}/"
    vote = Vote.objects.get()
    assert (vote.voter_id, vote.choice_id) == (VOTER_ID, choice.id)
    event = OutboxEvent.objects.get()
    assert event.event_type == "vote.cast" and event.aggregate_id == body["id"]
    assert event.envelope["data"] == {
        "id": body["id"],
        "poll_id": str(open_poll.id),
        "choice_id": str(choice.id),
        "voter_id": VOTER_ID,
    }


def test_anonymous_cannot_vote(anon, open_poll):
    problem(cast(anon, open_poll, choices_of(open_poll)[0]), 401)
    assert not Vote.objects.exists()


def test_voter_field_is_ignored_the_token_decides(voter, open_poll):
    response = cast(voter, open_poll, choices_of(open_poll)[0], voter=424242, id=str(uuid.uuid4()))
    assert response.status_code == 201
    assert Vote.objects.get().voter_id == VOTER_ID


def test_second_vote_in_the_same_poll_is_409(voter, open_poll):
    first, second = choices_of(open_poll)[:2]
    assert cast(voter, open_poll, first).status_code == 201
    body = problem(cast(voter, open_poll, second), 409)
    assert body["type"].endswith("/already-voted")
    assert Vote.objects.count() == 1 and OutboxEvent.objects.count() == 1


def test_other_users_vote_independently(client_for, open_poll):
    choice = choices_of(open_poll)[0]
    for user_id in (1, 2, 3):
        assert cast(client_for(user_id), open_poll, choice).status_code == 201
    assert Vote.objects.filter(poll_id=open_poll.id).count() == 3


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "closed"},
        {"status": "open", "closes_at": "past"},
    ],
)
def test_poll_must_be_open(voter, changes):
    if changes.get("closes_at") == "past":
        changes = {**changes, "closes_at": timezone.now() - timedelta(seconds=1)}
    poll = PollReplicaFactory(**changes)
    choice = ChoiceReplicaFactory(poll_id=poll.id)
    body = problem(cast(voter, poll, choice), 422)
    assert body["type"].endswith("/poll-not-open")
    assert not Vote.objects.exists()


def test_draft_poll_is_rechecked_and_refused_while_still_draft(voter, fake_polls):
    poll = PollReplicaFactory(status="draft", owner_id=OWNER_ID)
    choice = ChoiceReplicaFactory(poll_id=poll.id)
    fake_polls.respond(
        f"/internal/polls/{poll.id}/",
        {"id": str(poll.id), "owner_id": OWNER_ID, "status": "draft", "closes_at": None, "version": 1},
    )
    body = problem(cast(voter, poll, choice), 422)
    assert body["type"].endswith("/poll-not-open")


def test_poll_opened_before_its_event_arrived_accepts_the_vote(voter, fake_polls):
    poll = PollReplicaFactory(status="draft", owner_id=OWNER_ID)
    choice = ChoiceReplicaFactory(poll_id=poll.id)
    fake_polls.respond(
        f"/internal/polls/{poll.id}/",
        {"id": str(poll.id), "owner_id": OWNER_ID, "status": "open", "closes_at": None, "version": 2},
    )
    assert cast(voter, poll, choice).status_code == 201
    assert PollReplica.objects.get(pk=poll.id).status == "open"
    assert len(fake_polls.requests) == 1


def test_draft_refetch_is_stored_by_version_never_over_a_newer_state(voter, fake_polls):
    # polls_service answers with an older version than the replica holds (a late read): nothing changes.
    poll = PollReplicaFactory(status="draft", owner_id=OWNER_ID, version=4)
    choice = ChoiceReplicaFactory(poll_id=poll.id)
    fake_polls.respond(
        f"/internal/polls/{poll.id}/",
        {"id": str(poll.id), "owner_id": OWNER_ID, "status": "open", "closes_at": None, "version": 3},
    )
    body = problem(cast(voter, poll, choice), 422)
    assert body["type"].endswith("/poll-not-open")
    replica = PollReplica.objects.get(pk=poll.id)
    assert (replica.status, replica.version) == ("draft", 4)
    assert len(fake_polls.requests) == 1 and not Vote.objects.exists()


def test_poll_open_until_a_future_closes_at(voter):
    poll = PollReplicaFactory(status="open", closes_at=timezone.now() + timedelta(hours=1))
    assert cast(voter, poll, ChoiceReplicaFactory(poll_id=poll.id)).status_code == 201


def test_choice_must_belong_to_the_poll(voter, open_poll):
    elsewhere = ChoiceReplicaFactory(poll_id=PollReplicaFactory(status="open").id)
    body = problem(cast(voter, open_poll, elsewhere), 422)
    assert body["type"].endswith("/choice-not-in-poll")
    assert "choice" in body["errors"]


def test_deleted_choice_is_not_votable(voter, open_poll, fake_choices):
    choice = choices_of(open_poll)[0]
    ChoiceReplica.objects.filter(pk=choice.pk).update(deleted=True)
    problem(cast(voter, open_poll, choice), 422)


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"choice": "x"}, "choice"),
        ({"poll": "not-a-uuid"}, "poll"),
        ({"choice": None}, "choice"),
        ({"choice": 5}, "choice"),
    ],
)
def test_malformed_input_is_400(voter, open_poll, payload, field):
    base = {"poll": str(open_poll.id), "choice": str(choices_of(open_poll)[0].id)}
    body = problem(voter.post(VOTES, {**base, **payload}, format="json"), 400)
    assert field in body["errors"]


def test_missing_fields_are_400(voter):
    body = problem(voter.post(VOTES, {}, format="json"), 400)
    assert set(body["errors"]) == {"poll", "choice"}


def test_malformed_json_is_400(voter):
    problem(voter.post(VOTES, "{", content_type="application/json"), 400)


# --- replica misses ---------------------------------------------------------------------------------


def test_unknown_poll_is_fetched_with_its_choices_then_the_vote_succeeds(voter, client_for, fake_polls, fake_choices):
    poll_id, choice_id, other_choice = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    fake_polls.respond(
        f"/internal/polls/{poll_id}/",
        {"id": str(poll_id), "owner_id": OWNER_ID, "status": "open", "closes_at": None, "version": 2},
    )
    fake_choices.respond(
        f"/internal/polls/{poll_id}/choices/",
        {
            "poll_id": str(poll_id),
            "choices": [
                {"id": str(choice_id), "text": "A", "position": 0, "version": 1},
                {"id": str(other_choice), "text": "B", "position": 1, "version": 3},
            ],
        },
    )
    response = voter.post(VOTES, {"poll": str(poll_id), "choice": str(choice_id)}, format="json")
    assert response.status_code == 201, response.content
    replica = PollReplica.objects.get(pk=poll_id)
    assert (replica.status, replica.version) == ("open", 2)
    assert set(ChoiceReplica.objects.filter(poll_id=poll_id).values_list("id", flat=True)) == {choice_id, other_choice}
    assert fake_polls.requests[0].authorization.startswith("Service ")
    # Warm replicas: the next voter causes no call at all.
    second = client_for(4242).post(VOTES, {"poll": str(poll_id), "choice": str(other_choice)}, format="json")
    assert second.status_code == 201
    assert len(fake_polls.requests) == 1 and len(fake_choices.requests) == 1


def test_unknown_choice_is_fetched(voter, open_poll, fake_choices):
    choice_id = uuid.uuid4()
    fake_choices.respond(
        f"/internal/choices/{choice_id}/",
        {"id": str(choice_id), "poll_id": str(open_poll.id), "text": "New", "position": 9, "version": 4},
    )
    response = voter.post(VOTES, {"poll": str(open_poll.id), "choice": str(choice_id)}, format="json")
    assert response.status_code == 201, response.content
    replica = ChoiceReplica.objects.get(pk=choice_id)
    assert (replica.poll_id, replica.position, replica.version) == (open_poll.id, 9, 4)


def test_unknown_poll_everywhere_is_422(voter, fake_polls, fake_choices):
    body = problem(voter.post(VOTES, {"poll": str(uuid.uuid4()), "choice": str(uuid.uuid4())}, format="json"), 422)
    assert body["type"].endswith("/poll-not-found")


def test_unknown_choice_everywhere_is_422(voter, open_poll, fake_choices):
    body = problem(voter.post(VOTES, {"poll": str(open_poll.id), "choice": str(uuid.uuid4())}, format="json"), 422)
    assert body["type"].endswith("/choice-not-in-poll")


def test_open_breaker_answers_503_without_calling(voter, fake_polls, settings):
    settings.SERVICEKIT = {**settings.SERVICEKIT, "HTTP_CLIENT_BREAKER_FAIL_MAX": 1, "HTTP_CLIENT_RETRIES": 0}
    poll_id = uuid.uuid4()
    fake_polls.fail(f"/internal/polls/{poll_id}/", status=500)
    payload = {"poll": str(poll_id), "choice": str(uuid.uuid4())}
    first = voter.post(VOTES, payload, format="json")
    problem(first, 503)
    calls = len(fake_polls.requests)
    second = voter.post(VOTES, payload, format="json")
    problem(second, 503)
    assert int(second["Retry-After"]) >= 1
    assert len(fake_polls.requests) == calls  # the open breaker answered without the network
    assert not Vote.objects.exists()


def test_warm_replicas_need_no_other_service(voter, open_poll, settings):
    settings.POLLS_INTERNAL_URL = settings.CHOICE_INTERNAL_URL = "http://127.0.0.1:9"  # nothing listens
    assert cast(voter, open_poll, choices_of(open_poll)[0]).status_code == 201


# --- reading votes ----------------------------------------------------------------------------------


def test_list_shows_only_the_callers_votes(voter, open_poll):
    mine = VoteFactory(poll_id=open_poll.id, choice_id=choices_of(open_poll)[0].id, voter_id=VOTER_ID)
    VoteFactory(poll_id=open_poll.id, choice_id=choices_of(open_poll)[0].id, voter_id=777)
    body = voter.get(VOTES).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert [item["id"] for item in body["results"]] == [str(mine.id)]


def test_list_needs_a_token(anon):
    problem(anon.get(VOTES), 401)


def test_someone_elses_vote_is_404(voter, other, operator, open_poll):
    vote = VoteFactory(poll_id=open_poll.id, choice_id=choices_of(open_poll)[0].id, voter_id=VOTER_ID)
    assert voter.get(f"{VOTES}{vote.id}/").json()["id"] == str(vote.id)
    problem(other.get(f"{VOTES}{vote.id}/"), 404)
    problem(operator.get(f"{VOTES}{vote.id}/"), 404)
    problem(other.delete(f"{VOTES}{vote.id}/"), 404)
    assert Vote.objects.filter(pk=vote.pk).exists()


def test_v1_has_deprecation_headers(voter):
    response = voter.get(VOTES)
    assert response["Deprecation"].startswith("@")
    assert '</api/v2/votes/>; rel="successor-version"' in response["Link"]


# --- retracting and changing --------------------------------------------------------------------------


def test_retract_while_open_then_vote_again(voter, open_poll):
    first, second = choices_of(open_poll)[:2]
    vote_id = cast(voter, open_poll, first).json()["id"]
    assert voter.delete(f"{VOTES}{vote_id}/").status_code == 204
    assert not Vote.objects.exists()
    retracted = OutboxEvent.objects.get(event_type="vote.retracted")
    assert retracted.envelope["data"]["choice_id"] == str(first.id)
    assert retracted.envelope["version"] == 2  # the vote's version + 1: newer than its cast
    problem(voter.delete(f"{VOTES}{vote_id}/"), 404)
    assert cast(voter, open_poll, second).status_code == 201


def test_retract_after_close_is_422(voter, open_poll):
    vote_id = cast(voter, open_poll, choices_of(open_poll)[0]).json()["id"]
    PollReplica.objects.filter(pk=open_poll.pk).update(status="closed")
    problem(voter.delete(f"{VOTES}{vote_id}/"), 422)
    assert Vote.objects.filter(pk=vote_id).exists()


def test_change_is_not_in_v1(voter, open_poll):
    vote_id = cast(voter, open_poll, choices_of(open_poll)[0]).json()["id"]
    problem(voter.patch(f"{VOTES}{vote_id}/", {"choice": str(choices_of(open_poll)[1].id)}, format="json"), 405)


# --- results ------------------------------------------------------------------------------------------


def test_results_list_every_choice_in_order_with_zeros(anon, open_poll):
    a, b, c = choices_of(open_poll)
    for voter_id in (1, 2):
        VoteFactory(poll_id=open_poll.id, choice_id=c.id, voter_id=voter_id)
    VoteFactory(poll_id=open_poll.id, choice_id=a.id, voter_id=3)
    response = anon.get(results_url(open_poll.id))
    assert response.status_code == 200
    body = response.json()
    assert body["poll"] == str(open_poll.id) and body["total"] == 3
    assert body["choices"] == [
        {"choice": str(a.id), "votes": 1},
        {"choice": str(b.id), "votes": 0},
        {"choice": str(c.id), "votes": 2},
    ]
    assert body["as_of"].endswith("Z")


def test_results_of_a_poll_without_votes_are_all_zero(anon, open_poll):
    body = anon.get(results_url(open_poll.id)).json()
    assert body["total"] == 0 and [item["votes"] for item in body["choices"]] == [0, 0, 0]


def test_results_are_cached_and_invalidated_by_a_vote(anon, client_for, open_poll, django_capture_on_commit_callbacks):
    a, b, _ = choices_of(open_poll)
    first = anon.get(results_url(open_poll.id)).json()
    # A row written behind the service's back is not seen: the answer comes from the cache.
    Vote.objects.create(poll_id=open_poll.id, choice_id=b.id, voter_id=5150)
    assert anon.get(results_url(open_poll.id)).json() == first
    # A vote through the service invalidates after commit.

    with django_capture_on_commit_callbacks(execute=True):
        assert cast(client_for(6), open_poll, a).status_code == 201
    fresh = anon.get(results_url(open_poll.id)).json()
    assert fresh["total"] == 2
    assert fresh["as_of"] >= first["as_of"]


def test_draft_poll_results_only_for_owner_and_operator(anon, other, client_for, operator):
    draft = PollReplicaFactory(owner_id=OWNER_ID, status="draft")
    problem(anon.get(results_url(draft.id)), 404)
    problem(other.get(results_url(draft.id)), 404)
    assert client_for(OWNER_ID).get(results_url(draft.id)).status_code == 200
    assert operator.get(results_url(draft.id)).status_code == 200


def test_results_of_an_unknown_poll_are_404(anon, fake_polls, fake_choices):
    problem(anon.get(results_url(uuid.uuid4())), 404)


def test_results_of_a_poll_missing_here_are_fetched(anon, fake_polls, fake_choices):
    poll_id, choice_id = uuid.uuid4(), uuid.uuid4()
    fake_polls.respond(
        f"/internal/polls/{poll_id}/",
        {"id": str(poll_id), "owner_id": 1, "status": "closed", "closes_at": None, "version": 3},
    )
    fake_choices.respond(
        f"/internal/polls/{poll_id}/choices/",
        {"poll_id": str(poll_id), "choices": [{"id": str(choice_id), "text": "A", "position": 0, "version": 1}]},
    )
    body = anon.get(results_url(poll_id)).json()
    assert body["choices"] == [{"choice": str(choice_id), "votes": 0}]


def test_results_for_a_malformed_poll_id_are_404(anon):
    problem(anon.get("/api/v1/results/not-a-uuid/"), 404)


def test_deleted_poll_has_no_results_and_takes_no_votes(anon, voter):
    poll = PollReplicaFactory(status="deleted")
    choice = ChoiceReplicaFactory(poll_id=poll.id)
    problem(anon.get(results_url(poll.id)), 404)
    body = problem(cast(voter, poll, choice), 422)
    assert body["type"].endswith("/poll-not-found")
