"""PUT /internal/polls/{id}/state/ (the seal): polls_service's gate command, by version, service credential only."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from servicekit.events.models import OutboxEvent
from servicekit.testing import bearer, make_access_token, service_credentials
from votes.models import PollReplica, Vote
from votes.tests.conftest import OWNER_ID, choices_of

pytestmark = pytest.mark.django_db


def state_url(poll_id) -> str:
    return f"/internal/polls/{poll_id}/state/"


@pytest.fixture
def service() -> APIClient:
    client = APIClient()
    client.credentials(**service_credentials("polls"))
    return client


def put_state(client, poll_id, *, version, status, owner_id=OWNER_ID, closes_at=None, **extra):
    body = {"version": version, "owner_id": owner_id, "status": status, "closes_at": closes_at, **extra}
    return client.put(state_url(poll_id), body, format="json")


def cast(client, poll, choice):
    return client.post("/api/v2/votes/", {"poll": str(poll.id), "choice": str(choice.id)}, format="json")


def test_seal_closes_the_poll_and_answers_the_state_after(service, voter, open_poll):
    response = put_state(service, open_poll.id, version=2, status="closed")
    assert response.status_code == 200, response.content
    assert response.json() == {"poll_id": str(open_poll.id), "version": 2, "status": "closed"}
    replica = PollReplica.objects.get(pk=open_poll.id)
    assert (replica.status, replica.version, replica.owner_id) == ("closed", 2, OWNER_ID)
    refused = cast(voter, open_poll, choices_of(open_poll)[0])
    assert refused.status_code == 422 and refused.json()["type"].endswith("/poll-not-open")
    assert not Vote.objects.exists() and not OutboxEvent.objects.exists()


def test_seal_is_idempotent(service, open_poll):
    first = put_state(service, open_poll.id, version=2, status="closed")
    again = put_state(service, open_poll.id, version=2, status="closed")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"poll_id": str(open_poll.id), "version": 2, "status": "closed"}
    assert PollReplica.objects.filter(pk=open_poll.id).count() == 1


def test_an_older_command_changes_nothing_and_answers_the_current_state(service, voter, open_poll):
    PollReplica.objects.filter(pk=open_poll.pk).update(version=5)
    response = put_state(service, open_poll.id, version=4, status="closed")
    assert response.status_code == 200
    assert response.json() == {"poll_id": str(open_poll.id), "version": 5, "status": "open"}
    assert cast(voter, open_poll, choices_of(open_poll)[0]).status_code == 201


def test_a_newer_command_moves_the_gate_back_compensation(service, voter, open_poll):
    assert put_state(service, open_poll.id, version=2, status="closed").json()["status"] == "closed"
    # polls_service's commit failed after the seal: it sends the unchanged state at old + 2.
    assert put_state(service, open_poll.id, version=3, status="open").json() == {
        "poll_id": str(open_poll.id),
        "version": 3,
        "status": "open",
    }
    assert cast(voter, open_poll, choices_of(open_poll)[0]).status_code == 201


def test_seal_of_a_poll_never_seen_here_stores_it(service, voter):
    poll_id = uuid.uuid4()
    closes_at = (timezone.now() + timedelta(hours=1)).isoformat()
    response = put_state(service, poll_id, version=7, status="deleted", closes_at=closes_at, min_choices=2)
    assert response.status_code == 200
    assert response.json() == {"poll_id": str(poll_id), "version": 7, "status": "deleted"}
    replica = PollReplica.objects.get(pk=poll_id)
    assert replica.status == "deleted" and replica.closes_at is not None
    # No fetch is needed any more for that poll: polls_service is unreachable here and the answer is local.
    body = voter.post("/api/v2/votes/", {"poll": str(poll_id), "choice": str(uuid.uuid4())}, format="json").json()
    assert body["type"].endswith("/poll-not-found")


def test_seal_invalidates_the_results(service, open_poll, django_capture_on_commit_callbacks):
    generation = f"results:gen:{open_poll.id}"
    before = cache.get(generation, 0)
    with django_capture_on_commit_callbacks(execute=True):
        put_state(service, open_poll.id, version=2, status="closed")
    assert cache.get(generation, 0) == before + 1
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        put_state(service, open_poll.id, version=2, status="closed")  # nothing changed: nothing to invalidate
    assert callbacks == []


def test_change_and_retract_are_refused_after_the_seal(service, voter, open_poll):
    first, second = choices_of(open_poll)[:2]
    vote = cast(voter, open_poll, first).json()
    assert put_state(service, open_poll.id, version=2, status="closed").status_code == 200
    changed = voter.patch(f"/api/v2/votes/{vote['id']}/", {"choice": str(second.id)}, format="json")
    assert changed.status_code == 422 and changed.json()["type"].endswith("/poll-not-open")
    retracted = voter.delete(f"/api/v2/votes/{vote['id']}/")
    assert retracted.status_code == 422 and retracted.json()["type"].endswith("/poll-not-open")
    stored = Vote.objects.get()
    assert (str(stored.choice_id), stored.version) == (str(first.id), 1)
    assert list(OutboxEvent.objects.values_list("event_type", flat=True)) == ["vote.cast"]


def test_a_passed_closes_at_refuses_change_and_retract(voter, open_poll):
    first, second = choices_of(open_poll)[:2]
    vote = cast(voter, open_poll, first).json()
    PollReplica.objects.filter(pk=open_poll.pk).update(closes_at=timezone.now() - timedelta(seconds=1))
    assert voter.patch(f"/api/v2/votes/{vote['id']}/", {"choice": str(second.id)}, format="json").status_code == 422
    assert voter.delete(f"/api/v2/votes/{vote['id']}/").status_code == 422
    assert Vote.objects.filter(pk=vote["id"], choice_id=first.id).exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"owner_id": 1, "status": "closed"},
        {"version": "3", "owner_id": 1, "status": "closed"},
        {"version": 0, "owner_id": 1, "status": "closed"},
        {"version": 1.5, "owner_id": 1, "status": "closed"},
        {"version": True, "owner_id": 1, "status": "closed"},
        {"version": 2**63, "owner_id": 1, "status": "closed"},
        {"version": 3, "owner_id": "x", "status": "closed"},
        {"version": 3, "status": "closed"},
        {"version": 3, "owner_id": 1, "status": "sealed"},
        {"version": 3, "owner_id": 1},
        {"version": 3, "owner_id": 1, "status": "closed", "closes_at": "tomorrow"},
        {"version": 3, "owner_id": 1, "status": "closed", "min_choices": "two"},
        [{"version": 3, "owner_id": 1, "status": "closed"}],
        "closed",
    ],
)
def test_malformed_bodies_are_400_and_change_nothing(service, open_poll, body):
    response = service.put(state_url(open_poll.id), body, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    replica = PollReplica.objects.get(pk=open_poll.id)
    assert (replica.status, replica.version) == ("open", 1)


def test_malformed_json_is_400(service, open_poll):
    response = service.put(state_url(open_poll.id), "{", content_type="application/json")
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"


def test_a_malformed_poll_id_is_404(service):
    assert service.put("/internal/polls/not-a-uuid/state/", {}, format="json").status_code == 404


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (dict, 401),
        (lambda: bearer(make_access_token(OWNER_ID, "owner", roles=("user", "operator"))), 401),
        (lambda: {"HTTP_AUTHORIZATION": "Service wrong-token"}, 401),
        (lambda: service_credentials("polls", audience="choices"), 401),
        (lambda: service_credentials("choices"), 403),
    ],
    ids=["anonymous", "operator-user", "wrong-service-token", "polls-token-for-choices", "choice-service"],
)
def test_only_the_polls_service_may_seal(open_poll, headers, status):
    client = APIClient()
    response = client.put(
        state_url(open_poll.id), {"version": 9, "owner_id": 1, "status": "closed"}, format="json", **headers()
    )
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert PollReplica.objects.get(pk=open_poll.id).status == "open"


def test_get_is_not_allowed(service, open_poll):
    assert service.get(state_url(open_poll.id)).status_code == 405
