"""A poll's voter policy at vote_service: evaluated on every vote from the token alone, allow and deny per
attribute; it arrives with the poll's events and reads, and a seal leaves it as it was."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from servicekit.events import Event
from servicekit.events.inbox import apply_event
from servicekit.testing import bearer, make_access_token
from servicekit.testing_fixtures import OWNER_ID
from servicekit.voter_policy import DAY
from votes.models import PollReplica, Vote
from votes.tests.conftest import choices_of
from votes.tests.factories import ChoiceReplicaFactory, PollReplicaFactory

pytestmark = pytest.mark.django_db


def vote(poll: PollReplica, **claims) -> object:
    client = APIClient()
    client.credentials(**bearer(make_access_token(claims.pop("user_id", 700), "voter", **claims)))
    return client.post("/api/v1/votes/", {"poll": str(poll.id), "choice": str(choices_of(poll)[0].id)}, format="json")


def poll_with(policy) -> PollReplica:
    poll = PollReplicaFactory(owner_id=OWNER_ID, status="open", voter_policy=policy)
    ChoiceReplicaFactory(poll_id=poll.id, position=0)
    return poll


def refused(response) -> str:
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/voter-not-admitted")
    return body["detail"]


def test_a_role_rule_admits_its_roles_only() -> None:
    poll = poll_with({"roles": ["operator"]})
    assert refused(vote(poll, roles=["user"])) == "Only voters with the role operator may vote in this poll."
    assert vote(poll, user_id=701, roles=["user", "operator"]).status_code == 201
    assert Vote.objects.filter(poll_id=poll.id).count() == 1


def test_an_account_age_rule_admits_old_enough_accounts_only() -> None:
    poll = poll_with({"min_account_age_days": 30})
    assert vote(poll, user_id=702, joined=int(time.time() - 31 * DAY)).status_code == 201
    assert "30 days old" in refused(vote(poll, user_id=703, joined=int(time.time() - 29 * DAY)))
    assert "log in again" in refused(vote(poll, user_id=704))  # a token from before the claim existed


def test_no_policy_admits_every_signed_in_user() -> None:
    assert vote(poll_with(None), user_id=705).status_code == 201


def test_the_policy_arrives_with_the_polls_events_and_a_fetch(fake_polls, fake_choices) -> None:
    poll_id = uuid.uuid4()
    policy = {"roles": ["operator"]}
    data = {"id": str(poll_id), "owner_id": OWNER_ID, "status": "open", "closes_at": None, "question": "?"}
    apply_event(
        Event(
            version=2,
            id=str(uuid.uuid4()),
            type="poll.opened",
            occurred_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            producer="polls",
            aggregate_id=str(poll_id),
            data={**data, "voter_policy": {"roles": ["operator", "operator"]}},
        )
    )
    assert PollReplica.objects.get(pk=poll_id).voter_policy == policy
    # A poll this service has not heard of: the fetch brings its policy.
    fetched = uuid.uuid4()
    read = {**data, "id": str(fetched), "version": 2, "voter_policy": policy}
    fake_polls.respond(f"/internal/polls/{fetched}/", read)
    choice = {"id": str(uuid.uuid4()), "text": "Yes", "position": 0, "version": 1}
    fake_choices.respond(f"/internal/polls/{fetched}/choices/", {"poll_id": str(fetched), "choices": [choice]})
    client = APIClient()
    client.credentials(**bearer(make_access_token(706, "voter")))
    response = client.post("/api/v1/votes/", {"poll": str(fetched), "choice": choice["id"]}, format="json")
    assert "operator" in refused(response)
    assert PollReplica.objects.get(pk=fetched).voter_policy == policy


def test_a_seal_keeps_the_policy(client_for) -> None:
    from servicekit.testing import service_credentials

    poll = poll_with({"min_account_age_days": 5})
    sealer = APIClient()
    sealer.credentials(**service_credentials("polls"))
    command = {"version": poll.version + 1, "owner_id": OWNER_ID, "status": "closed", "closes_at": None}
    assert sealer.put(f"/internal/polls/{poll.id}/state/", command, format="json").status_code == 200
    assert PollReplica.objects.get(pk=poll.id).voter_policy == {"min_account_age_days": 5}


def test_an_open_landing_between_the_policy_read_and_the_vote_admits_nobody_the_policy_refuses(
    fake_polls, monkeypatch
) -> None:
    # The replica still holds the draft when the vote reads its policy; poll.opened lands right after that read.
    # The vote must not go in on the strength of a policy read from a draft.
    from votes import services

    policy = {"roles": ["operator"]}
    poll = PollReplicaFactory(owner_id=OWNER_ID, status="draft", voter_policy=policy)
    ChoiceReplicaFactory(poll_id=poll.id, position=0)
    state = {"id": str(poll.id), "owner_id": OWNER_ID, "status": "open", "closes_at": None, "voter_policy": policy}
    fake_polls.respond(f"/internal/polls/{poll.id}/", {**state, "version": poll.version + 1})
    read_policy = services._poll_policy

    def read_then_open(poll_id):
        read = read_policy(poll_id)
        PollReplica.objects.filter(pk=poll_id).update(status="open", version=poll.version + 1)
        return read

    monkeypatch.setattr(services, "_poll_policy", read_then_open)
    assert "operator" in refused(vote(poll, roles=["user"]))
    assert not Vote.objects.filter(poll_id=poll.id).exists()


def test_a_deleted_poll_is_not_found_for_voters_its_remembered_policy_refuses_too() -> None:
    poll = poll_with({"roles": ["operator"]})
    refused(vote(poll, user_id=706, roles=["user"]))  # the policy is remembered from here on
    PollReplica.objects.filter(pk=poll.id).update(status="deleted", version=poll.version + 1)
    for claims in ({"user_id": 706, "roles": ["user"]}, {"user_id": 707, "roles": ["operator"]}):
        response = vote(poll, **claims)
        assert response.status_code == 422, response.content
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["type"].endswith("/poll-not-found")  # what a poll never seen answers
    assert not Vote.objects.filter(poll_id=poll.id).exists()
