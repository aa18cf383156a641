"""The freeze command (``PUT /internal/polls/{id}/state/``): polls_service moves a poll's state here before
it commits; once it answered a non-draft state, no create, edit or delete of the poll's choices commits."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.db import connection
from rest_framework.test import APIClient

from choices.models import Choice, PollReplica
from choices.tests.factories import ChoiceFactory, PollReplicaFactory
from servicekit.events.models import OutboxEvent
from servicekit.testing import bearer, make_access_token, service_credentials
from servicekit.testing_fixtures import OTHER_ID, OWNER_ID


def state_url(poll_id) -> str:
    return f"/internal/polls/{poll_id}/state/"


def body(version: int, status: str = "open", *, min_choices: int | None = 2, owner_id: int = OWNER_ID) -> dict:
    payload = {"version": version, "owner_id": owner_id, "status": status, "closes_at": None}
    if min_choices is not None:
        payload["min_choices"] = min_choices
    return payload


def service_client() -> APIClient:
    client = APIClient()
    client.credentials(**service_credentials("polls"))
    return client


@pytest.fixture
def service() -> APIClient:
    return service_client()


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def replica_state(poll_id) -> tuple:
    return PollReplica.objects.values_list("status", "version").get(pk=poll_id)


@pytest.mark.django_db
class TestFreeze:
    def test_open_with_enough_choices_applies_the_state(self, service, draft_poll):
        ChoiceFactory.create_batch(2, poll_id=draft_poll.id)
        response = service.put(state_url(draft_poll.id), body(2), format="json")
        assert response.status_code == 200, response.content
        assert response.json() == {"poll_id": str(draft_poll.id), "version": 2, "status": "open", "choices": 2}
        assert replica_state(draft_poll.id) == ("open", 2)

    @pytest.mark.parametrize("count", [0, 1])
    def test_open_under_min_choices_is_409_and_changes_nothing(self, service, draft_poll, count):
        ChoiceFactory.create_batch(count, poll_id=draft_poll.id)
        body_ = problem(service.put(state_url(draft_poll.id), body(2), format="json"), 409)
        assert body_["type"].endswith("/not-enough-choices")
        assert (body_["code"], body_["choices"], body_["status"]) == ("not-enough-choices", count, 409)
        assert replica_state(draft_poll.id) == ("draft", 1)

    def test_an_unknown_poll_is_created_from_the_command_unless_refused(self, service):
        poll_id = uuid.uuid4()
        problem(service.put(state_url(poll_id), body(2), format="json"), 409)
        assert not PollReplica.objects.filter(pk=poll_id).exists()
        response = service.put(state_url(poll_id), body(3, "closed", min_choices=None), format="json")
        assert response.json() == {"poll_id": str(poll_id), "version": 3, "status": "closed", "choices": 0}
        replica = PollReplica.objects.get(pk=poll_id)
        assert (replica.owner_id, replica.status, replica.version) == (OWNER_ID, "closed", 3)

    def test_idempotent(self, service, draft_poll):
        ChoiceFactory.create_batch(3, poll_id=draft_poll.id)
        first = service.put(state_url(draft_poll.id), body(2), format="json")
        again = service.put(state_url(draft_poll.id), body(2), format="json")
        assert first.status_code == again.status_code == 200
        assert (
            first.json()
            == again.json()
            == {
                "poll_id": str(draft_poll.id),
                "version": 2,
                "status": "open",
                "choices": 3,
            }
        )
        assert replica_state(draft_poll.id) == ("open", 2)

    def test_a_stale_command_changes_nothing_and_answers_the_current_state(self, service, draft_poll):
        ChoiceFactory.create_batch(2, poll_id=draft_poll.id)
        service.put(state_url(draft_poll.id), body(4, "closed", min_choices=None), format="json")
        response = service.put(state_url(draft_poll.id), body(3), format="json")
        assert response.status_code == 200
        assert response.json() == {"poll_id": str(draft_poll.id), "version": 4, "status": "closed", "choices": 2}
        assert replica_state(draft_poll.id) == ("closed", 4)

    def test_the_command_and_events_are_ordered_by_one_version(self, service, draft_poll):
        from choices.services import poll_replica_apply
        from servicekit.replicas import poll_state

        ChoiceFactory.create_batch(2, poll_id=draft_poll.id)
        service.put(state_url(draft_poll.id), body(2), format="json")
        # The poll.opened event (same version) and a late poll.updated (older) change nothing.
        data = {"owner_id": OWNER_ID, "status": "draft", "closes_at": None}
        poll_replica_apply(poll_id=draft_poll.id, version=1, state=poll_state(data))
        poll_replica_apply(poll_id=draft_poll.id, version=2, state=poll_state({**data, "status": "open"}))
        assert replica_state(draft_poll.id) == ("open", 2)

    def test_a_compensating_command_moves_the_gate_back(self, service, owner, draft_poll):
        choices = ChoiceFactory.create_batch(2, poll_id=draft_poll.id)
        service.put(state_url(draft_poll.id), body(2), format="json")
        problem(owner.patch(f"/api/v1/choices/{choices[0].id}/", {"text": "x"}, format="json"), 409)
        # polls_service's commit failed: it bumps the poll to old + 2 (still a draft) and says so.
        response = service.put(state_url(draft_poll.id), body(3, "draft", min_choices=None), format="json")
        assert response.json()["status"] == "draft"
        assert owner.patch(f"/api/v1/choices/{choices[0].id}/", {"text": "x"}, format="json").status_code == 200

    def test_a_deleted_state_removes_the_choices(self, service, draft_poll):
        ChoiceFactory.create_batch(2, poll_id=draft_poll.id, votes=1)
        response = service.put(state_url(draft_poll.id), body(2, "deleted", min_choices=None), format="json")
        assert response.json() == {"poll_id": str(draft_poll.id), "version": 2, "status": "deleted", "choices": 0}
        assert not Choice.objects.filter(poll_id=draft_poll.id).exists()

    def test_closes_at_is_stored(self, service, draft_poll):
        ChoiceFactory.create_batch(2, poll_id=draft_poll.id)
        payload = {**body(2), "closes_at": "2030-01-02T03:04:05Z"}
        assert service.put(state_url(draft_poll.id), payload, format="json").status_code == 200
        assert PollReplica.objects.get(pk=draft_poll.id).closes_at.isoformat() == "2030-01-02T03:04:05+00:00"

    @pytest.mark.parametrize(
        "payload, field",
        [
            ({"owner_id": OWNER_ID, "status": "open"}, "version"),
            ({"version": "2", "owner_id": OWNER_ID, "status": "open"}, "version"),
            ({"version": True, "owner_id": OWNER_ID, "status": "open"}, "version"),
            ({"version": 0, "owner_id": OWNER_ID, "status": "open"}, "version"),
            ({"version": 2**63, "owner_id": OWNER_ID, "status": "open"}, "version"),
            ({"version": 2, "status": "open"}, "owner_id"),
            ({"version": 2, "owner_id": "11", "status": "open"}, "owner_id"),
            ({"version": 2, "owner_id": OWNER_ID, "status": "opened"}, "status"),
            ({"version": 2, "owner_id": OWNER_ID}, "status"),
            ({"version": 2, "owner_id": OWNER_ID, "status": "open", "closes_at": "soon"}, "closes_at"),
            ({"version": 2, "owner_id": OWNER_ID, "status": "open", "min_choices": -1}, "min_choices"),
            ({"version": 2, "owner_id": OWNER_ID, "status": "open", "min_choices": "2"}, "min_choices"),
        ],
    )
    def test_a_malformed_body_is_400_and_changes_nothing(self, service, draft_poll, payload, field):
        body_ = problem(service.put(state_url(draft_poll.id), payload, format="json"), 400)
        assert field in body_["errors"]
        assert replica_state(draft_poll.id) == ("draft", 1)

    @pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"open"', ""])
    def test_a_body_that_is_no_object_is_400(self, service, draft_poll, raw):
        problem(service.put(state_url(draft_poll.id), raw, content_type="application/json"), 400)
        assert replica_state(draft_poll.id) == ("draft", 1)

    @pytest.mark.parametrize(
        ("credentials", "status"),
        [
            (dict, 401),
            (lambda: bearer(make_access_token(OWNER_ID, "owner", roles=("user", "operator"))), 401),
            (lambda: {"HTTP_AUTHORIZATION": "Service wrong-token"}, 401),
            (lambda: service_credentials("polls", audience="votes"), 401),
            (lambda: service_credentials("votes"), 403),
        ],
        ids=["anonymous", "operator-user", "wrong-service-token", "polls-token-for-votes", "vote-service"],
    )
    def test_only_the_polls_service_may_freeze(self, draft_poll, credentials, status):
        ChoiceFactory.create_batch(2, poll_id=draft_poll.id)
        response = APIClient().put(state_url(draft_poll.id), body(2), format="json", **credentials())
        assert response.status_code == status
        assert response["Content-Type"] == "application/problem+json"
        assert replica_state(draft_poll.id) == ("draft", 1)

    def test_after_the_freeze_no_choice_is_created_edited_or_deleted(self, service, owner, operator, draft_poll):
        choice, other = ChoiceFactory.create_batch(2, poll_id=draft_poll.id)
        assert service.put(state_url(draft_poll.id), body(2), format="json").status_code == 200
        for client in (owner, operator):
            refusals = [
                client.post("/api/v1/choices/", {"poll": str(draft_poll.id), "text": "late"}, format="json"),
                client.patch(f"/api/v2/choices/{choice.id}/", {"text": "edited"}, format="json"),
                client.patch(f"/api/v3/choices/{choice.id}/", {"position": 9}, format="json"),
                client.delete(f"/api/v1/choices/{other.id}/"),
            ]
            for response in refusals:
                assert problem(response, 409)["type"].endswith("/poll-not-draft")
        assert sorted(Choice.objects.filter(poll_id=draft_poll.id).values_list("text", "version")) == sorted(
            [(choice.text, 1), (other.text, 1)]
        )
        assert not OutboxEvent.objects.exists()


# --- the race itself: real concurrent transactions -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_no_choice_write_commits_after_the_freeze_answered():
    """Editors hammer a draft poll's choices while polls_service freezes it: every write that got a 2xx
    committed before the freeze answered, and nothing changes afterwards."""
    poll = PollReplicaFactory(owner_id=OWNER_ID, status="draft")
    choices = [ChoiceFactory(poll_id=poll.id, text=f"c{i}", position=i) for i in range(4)]
    frozen = threading.Event()
    stop = threading.Event()
    start = threading.Barrier(5)
    outcomes: list[tuple[bool, int, str]] = []  # (started after the freeze answered, status, problem type)
    lock = threading.Lock()

    def edit(index: int) -> None:
        client = APIClient()
        client.credentials(**bearer(make_access_token(OWNER_ID, "owner")))
        mine = choices[index]
        step = 0
        try:
            start.wait()
            while not stop.is_set():
                after = frozen.is_set()
                step += 1
                if step % 3 == 0:
                    response = client.post(
                        "/api/v1/choices/", {"poll": str(poll.id), "text": f"new {index}-{step}"}, format="json"
                    )
                elif step % 3 == 1:
                    response = client.patch(f"/api/v1/choices/{mine.id}/", {"text": f"{index}-{step}"}, format="json")
                else:
                    response = client.patch(f"/api/v1/choices/{mine.id}/", {"position": step}, format="json")
                kind = response.json().get("type", "") if response.status_code >= 400 else ""
                with lock:
                    outcomes.append((after, response.status_code, kind.rsplit("/", 1)[-1]))
        finally:
            connection.close()

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        start.wait()
        # Let the editors commit some writes first (a deadline, not a fixed sleep).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with lock:
                if sum(1 for _, status, _ in outcomes if status in (200, 201)) >= 8:
                    break
            time.sleep(0.005)
        response = service_client().put(state_url(poll.id), body(2), format="json")
        assert response.status_code == 200, response.content
        frozen.set()
        snapshot = (
            sorted(Choice.objects.filter(poll_id=poll.id).values_list("id", "text", "position", "version")),
            OutboxEvent.objects.count(),
        )
        # Keep editing until every editor was refused a few times after the freeze.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with lock:
                if sum(1 for after, _, _ in outcomes if after) >= 20:
                    break
            time.sleep(0.005)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        connection.close()

    after_freeze = [(status, kind) for after, status, kind in outcomes if after]
    assert len(after_freeze) >= 20
    assert set(after_freeze) == {(409, "poll-not-draft")}, after_freeze
    assert any(status in (200, 201) for after, status, _ in outcomes if not after)
    assert {status for _, status, _ in outcomes} <= {200, 201, 409}
    assert (
        sorted(Choice.objects.filter(poll_id=poll.id).values_list("id", "text", "position", "version")),
        OutboxEvent.objects.count(),
    ) == snapshot
    assert replica_state(poll.id) == ("open", 2)


@pytest.mark.django_db(transaction=True)
def test_the_choice_count_is_decided_under_the_lock_against_concurrent_deletes():
    """A delete racing the freeze either commits first (and the open is refused) or is refused: never
    both an open poll and fewer than two choices."""
    for _ in range(5):
        poll = PollReplicaFactory(owner_id=OWNER_ID, status="draft")
        victim, _kept = ChoiceFactory(poll_id=poll.id), ChoiceFactory(poll_id=poll.id)
        barrier = threading.Barrier(2)
        results: dict[str, int] = {}

        def delete(victim=victim, results=results, barrier=barrier) -> None:
            client = APIClient()
            client.credentials(**bearer(make_access_token(OWNER_ID, "owner")))
            try:
                barrier.wait()
                results["delete"] = client.delete(f"/api/v1/choices/{victim.id}/").status_code
            finally:
                connection.close()

        def freeze(poll=poll, results=results, barrier=barrier) -> None:
            try:
                barrier.wait()
                results["freeze"] = service_client().put(state_url(poll.id), body(2), format="json").status_code
            finally:
                connection.close()

        threads = [threading.Thread(target=delete), threading.Thread(target=freeze)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results.values()) == [204, 409] or results == {"delete": 409, "freeze": 200}, results
        status = PollReplica.objects.get(pk=poll.id).status
        count = Choice.objects.filter(poll_id=poll.id).count()
        assert (status, count) in {("draft", 1), ("open", 2)}, (status, count, results)


@pytest.mark.django_db
def test_another_users_token_cannot_reach_the_command(client_for, draft_poll):
    response = client_for(OTHER_ID).put(state_url(draft_poll.id), body(2), format="json")
    assert response.status_code in (401, 403)
