"""Choices API v1: every rule, status code and permission."""

from __future__ import annotations

import json
import uuid

import pytest

from choices.models import Choice, PollReplica
from choices.tests.factories import ChoiceFactory, PollReplicaFactory, tally
from servicekit.events.models import OutboxEvent
from servicekit.testing_fixtures import OWNER_ID

pytestmark = pytest.mark.django_db

URL = "/api/v1/choices/"


def detail(choice) -> str:
    return f"{URL}{choice.id}/"


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


# --- reading ----------------------------------------------------------------------------------------


def test_list_shows_choices_of_non_draft_polls_to_anyone(anon, open_poll, draft_poll):
    visible = ChoiceFactory(poll_id=open_poll.id, text="Visible")
    ChoiceFactory(poll_id=draft_poll.id, text="Hidden draft")
    response = anon.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert [item["id"] for item in body["results"]] == [str(visible.id)]
    assert body["results"][0] == {
        "id": str(visible.id),
        "poll": str(open_poll.id),
        "text": "Visible",
        "position": visible.position,
        "votes": 0,
    }


def test_draft_choices_visible_to_owner_and_operator_only(owner, other, operator, draft_poll):
    choice = ChoiceFactory(poll_id=draft_poll.id)
    assert owner.get(detail(choice)).status_code == 200
    assert operator.get(detail(choice)).status_code == 200
    problem(other.get(detail(choice)), 404)
    assert other.get(URL).json()["count"] == 0
    assert owner.get(URL).json()["count"] == 1


def test_list_filters_by_poll_in_display_order(anon, open_poll):
    second = ChoiceFactory(poll_id=open_poll.id, position=2)
    first = ChoiceFactory(poll_id=open_poll.id, position=1)
    ChoiceFactory(poll_id=PollReplicaFactory(status="open").id)
    response = anon.get(URL, {"poll": str(open_poll.id)})
    assert [item["id"] for item in response.json()["results"]] == [str(first.id), str(second.id)]


def test_list_rejects_malformed_poll_filter(anon):
    problem(anon.get(URL, {"poll": "not-a-uuid"}), 400)


def test_page_size_is_capped_at_100(anon, open_poll):
    for _ in range(3):
        ChoiceFactory(poll_id=open_poll.id)
    body = anon.get(URL, {"page_size": 2}).json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    many = PollReplicaFactory(status="open")
    Choice.objects.bulk_create(Choice(poll_id=many.id, text=f"c{i}", position=i) for i in range(105))
    assert len(anon.get(URL, {"page_size": 1000, "poll": str(many.id)}).json()["results"]) == 100


def test_v1_announces_deprecation_and_successor(anon, open_poll):
    response = anon.get(URL)
    assert response["Deprecation"].startswith("@")
    assert "Sunset" in response
    assert '</api/v2/choices/>; rel="successor-version"' in response["Link"]


def test_retrieve_unknown_choice_is_404(anon):
    problem(anon.get(f"{URL}{uuid.uuid4()}/"), 404)


# --- creating -----------------------------------------------------------------------------------------


def test_owner_adds_choice_trimmed_with_next_position_and_event(owner, draft_poll):
    ChoiceFactory(poll_id=draft_poll.id, position=4)
    response = owner.post(URL, {"poll": str(draft_poll.id), "text": "  Coffee  "}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["text"] == "Coffee" and body["position"] == 5 and body["votes"] == 0
    assert response["Location"] == f"/api/v1/choices/{body['id']}/"
    event = OutboxEvent.objects.get(event_type="choice.created")
    assert event.aggregate_id == body["id"]
    assert event.envelope["version"] == 1
    assert event.envelope["data"] == {"id": body["id"], "poll_id": str(draft_poll.id), "text": "Coffee", "position": 5}


def test_anonymous_cannot_add(anon, draft_poll):
    problem(anon.post(URL, {"poll": str(draft_poll.id), "text": "x"}, format="json"), 401)


def test_other_user_cannot_add_to_someone_elses_poll(other, draft_poll):
    problem(other.post(URL, {"poll": str(draft_poll.id), "text": "x"}, format="json"), 403)
    assert not Choice.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_operator_may_add(operator, draft_poll):
    assert operator.post(URL, {"poll": str(draft_poll.id), "text": "x"}, format="json").status_code == 201


@pytest.mark.parametrize("status", ["open", "closed"])
def test_choices_only_change_while_draft(owner, status):
    poll = PollReplicaFactory(owner_id=OWNER_ID, status=status)
    body = problem(owner.post(URL, {"poll": str(poll.id), "text": "x"}, format="json"), 409)
    assert body["type"].endswith("/poll-not-draft")


def test_mass_assignment_of_votes_and_id_is_ignored(owner, draft_poll):
    chosen_id = str(uuid.uuid4())
    response = owner.post(URL, {"poll": str(draft_poll.id), "text": "x", "votes": 999, "id": chosen_id}, format="json")
    assert response.status_code == 201
    assert response.json()["votes"] == 0 and response.json()["id"] != chosen_id
    assert tally(Choice.objects.get()) == 0


def test_twenty_choice_cap(owner, draft_poll):
    Choice.objects.bulk_create(Choice(poll_id=draft_poll.id, text=f"c{i}", position=i) for i in range(20))
    body = problem(owner.post(URL, {"poll": str(draft_poll.id), "text": "one more"}, format="json"), 409)
    assert body["type"].endswith("/choice-limit-reached")
    assert Choice.objects.filter(poll_id=draft_poll.id).count() == 20


@pytest.mark.parametrize("text", ["tea", "TEA", "  Tea  ", "tEa"])
def test_text_is_unique_per_poll_case_insensitively(owner, draft_poll, text):
    ChoiceFactory(poll_id=draft_poll.id, text="Tea")
    body = problem(owner.post(URL, {"poll": str(draft_poll.id), "text": text}, format="json"), 409)
    assert body["errors"] == {"text": ["This poll already has a choice with this text."]}
    assert Choice.objects.filter(poll_id=draft_poll.id).count() == 1


def test_same_text_in_another_poll_is_fine(owner, draft_poll):
    ChoiceFactory(poll_id=PollReplicaFactory(owner_id=OWNER_ID).id, text="Tea")
    assert owner.post(URL, {"poll": str(draft_poll.id), "text": "tea"}, format="json").status_code == 201


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 201}, "text"),
        ({"text": "nul\x00byte"}, "text"),
        ({"text": "bell\x07"}, "text"),
        ({"text": "line\nbreak"}, "text"),
        ({"text": 12}, "text"),
        ({}, "text"),
        ({"text": "ok", "position": -1}, "position"),
        ({"text": "ok", "position": "first"}, "position"),
        ({"text": "ok", "position": "3"}, "position"),
        ({"text": "ok", "position": True}, "position"),
        ({"text": "ok", "position": 1.5}, "position"),
        ({"text": "ok", "position": 10_001}, "position"),
        ({"text": "ok", "poll": "nope"}, "poll"),
        ({"text": "ok", "poll": 5}, "poll"),
    ],
)
def test_text_and_field_validation(owner, draft_poll, payload, field):
    body = problem(owner.post(URL, {"poll": str(draft_poll.id), **payload}, format="json"), 400)
    assert field in body["errors"]
    assert not Choice.objects.exists()


def test_text_of_200_characters_is_accepted(owner, draft_poll):
    response = owner.post(URL, {"poll": str(draft_poll.id), "text": "é" * 200}, format="json")
    assert response.status_code == 201


def test_malformed_json_is_400(owner):
    problem(owner.post(URL, "{not json", content_type="application/json"), 400)


def test_body_over_64_kib_is_413(owner, draft_poll):
    payload = json.dumps({"poll": str(draft_poll.id), "text": "x" * (65 * 1024)})
    problem(owner.post(URL, payload, content_type="application/json"), 413)


def test_unknown_poll_is_422_after_asking_polls_service(owner, fake_polls):
    poll_id = uuid.uuid4()
    body = problem(owner.post(URL, {"poll": str(poll_id), "text": "x"}, format="json"), 422)
    assert body["type"].endswith("/poll-not-found")
    assert fake_polls.calls_to(f"/internal/polls/{poll_id}/") == 1


def test_replica_miss_fetches_poll_with_service_credential(owner, fake_polls):
    poll_id = uuid.uuid4()
    fake_polls.respond(
        f"/internal/polls/{poll_id}/",
        {"id": str(poll_id), "owner_id": OWNER_ID, "status": "draft", "closes_at": None, "version": 1},
    )
    response = owner.post(URL, {"poll": str(poll_id), "text": "x"}, format="json")
    assert response.status_code == 201, response.content
    replica = PollReplica.objects.get(pk=poll_id)
    assert (replica.owner_id, replica.status) == (OWNER_ID, "draft")
    assert fake_polls.requests[0].authorization.startswith("Service ")
    # Warm now: the second create asks nobody.
    assert owner.post(URL, {"poll": str(poll_id), "text": "y"}, format="json").status_code == 201
    assert fake_polls.calls_to(f"/internal/polls/{poll_id}/") == 1


def test_polls_service_down_is_503_with_retry_after(owner, fake_polls):
    fake_polls.stop()
    response = owner.post(URL, {"poll": str(uuid.uuid4()), "text": "x"}, format="json")
    problem(response, 503)
    assert int(response["Retry-After"]) >= 1
    assert not Choice.objects.exists()


# --- editing and removing ---------------------------------------------------------------------------


def test_owner_edits_text_and_reorders(owner, draft_poll):
    a = ChoiceFactory(poll_id=draft_poll.id, text="A", position=0)
    b = ChoiceFactory(poll_id=draft_poll.id, text="B", position=1)
    response = owner.patch(detail(b), {"position": 0, "text": " Bee "}, format="json")
    assert response.status_code == 200, response.content
    owner.patch(detail(a), {"position": 1}, format="json")
    listed = owner.get(URL, {"poll": str(draft_poll.id)}).json()["results"]
    assert [(item["text"], item["position"]) for item in listed] == [("Bee", 0), ("A", 1)]
    events = list(OutboxEvent.objects.filter(event_type="choice.updated").order_by("id"))
    assert [e.envelope["data"]["position"] for e in events] == [0, 1]
    # Every change moves the choice's version by one, carried by its event.
    assert [(e.aggregate_id, e.envelope["version"]) for e in events] == [(str(b.id), 2), (str(a.id), 2)]
    b.refresh_from_db()
    assert b.version == 2
    owner.patch(detail(b), {"text": "Bee!"}, format="json")
    b.refresh_from_db()
    assert b.version == 3


def test_patch_ignores_poll_and_votes(owner, draft_poll):
    choice = ChoiceFactory(poll_id=draft_poll.id, votes=3)
    elsewhere = PollReplicaFactory(owner_id=OWNER_ID)
    response = owner.patch(detail(choice), {"poll": str(elsewhere.id), "votes": 1000}, format="json")
    assert response.status_code == 200
    assert response.json()["votes"] == 3
    choice.refresh_from_db()
    assert (choice.poll_id, tally(choice)) == (draft_poll.id, 3)
    assert not OutboxEvent.objects.exists()  # nothing changed, nothing announced


def test_patch_duplicate_text_is_409(owner, draft_poll):
    ChoiceFactory(poll_id=draft_poll.id, text="Tea")
    choice = ChoiceFactory(poll_id=draft_poll.id, text="Coffee")
    problem(owner.patch(detail(choice), {"text": "TEA"}, format="json"), 409)
    choice.refresh_from_db()
    assert choice.text == "Coffee"


def test_patch_validation(owner, draft_poll):
    choice = ChoiceFactory(poll_id=draft_poll.id)
    problem(owner.patch(detail(choice), {"text": "bad\x00"}, format="json"), 400)
    problem(owner.patch(detail(choice), {"text": ""}, format="json"), 400)


def test_other_user_cannot_edit_or_delete_visible_choice(other, open_poll):
    choice = ChoiceFactory(poll_id=open_poll.id)
    problem(other.patch(detail(choice), {"text": "mine"}, format="json"), 403)
    problem(other.delete(detail(choice)), 403)
    assert Choice.objects.filter(pk=choice.pk).exists()


def test_other_user_gets_404_for_draft_choices(other, draft_poll):
    choice = ChoiceFactory(poll_id=draft_poll.id)
    problem(other.patch(detail(choice), {"text": "mine"}, format="json"), 404)
    problem(other.delete(detail(choice)), 404)


def test_anonymous_cannot_edit(anon, open_poll):
    choice = ChoiceFactory(poll_id=open_poll.id)
    problem(anon.patch(detail(choice), {"text": "x"}, format="json"), 401)
    problem(anon.delete(detail(choice)), 401)


def test_owner_cannot_edit_or_delete_once_open(owner, open_poll):
    choice = ChoiceFactory(poll_id=open_poll.id)
    problem(owner.patch(detail(choice), {"text": "later"}, format="json"), 409)
    problem(owner.delete(detail(choice)), 409)


def test_owner_and_operator_delete_draft_choices(owner, operator, draft_poll):
    mine = ChoiceFactory(poll_id=draft_poll.id)
    theirs = ChoiceFactory(poll_id=draft_poll.id)
    assert owner.delete(detail(mine)).status_code == 204
    assert operator.delete(detail(theirs)).status_code == 204
    assert not Choice.objects.exists()
    deleted = OutboxEvent.objects.filter(event_type="choice.deleted")
    assert {e.aggregate_id for e in deleted} == {str(mine.id), str(theirs.id)}
    assert {e.envelope["version"] for e in deleted} == {2}  # the deletion is the version after the last
    problem(owner.delete(detail(mine)), 404)


def test_put_is_not_allowed(owner, draft_poll):
    choice = ChoiceFactory(poll_id=draft_poll.id)
    problem(owner.put(detail(choice), {"text": "x"}, format="json"), 405)


def test_a_poll_opened_before_its_event_arrived_shows_its_choices(anon, draft_poll, fake_polls):
    choice = ChoiceFactory(poll_id=draft_poll.id)
    fake_polls.respond(
        f"/internal/polls/{draft_poll.id}/",
        {"id": str(draft_poll.id), "owner_id": OWNER_ID, "status": "open", "closes_at": None, "version": 2},
    )
    body = anon.get(URL, {"poll": str(draft_poll.id)}).json()
    assert [item["id"] for item in body["results"]] == [str(choice.id)]
    assert PollReplica.objects.get(pk=draft_poll.id).status == "open"
    assert anon.get(detail(choice)).status_code == 200
    assert fake_polls.calls_to(f"/internal/polls/{draft_poll.id}/") == 1


def test_a_real_draft_stays_hidden_after_the_check(anon, draft_poll, fake_polls):
    choice = ChoiceFactory(poll_id=draft_poll.id)
    fake_polls.respond(
        f"/internal/polls/{draft_poll.id}/",
        {"id": str(draft_poll.id), "owner_id": OWNER_ID, "status": "draft", "closes_at": None, "version": 1},
    )
    assert anon.get(URL, {"poll": str(draft_poll.id)}).json()["count"] == 0
    problem(anon.get(detail(choice)), 404)
    assert PollReplica.objects.get(pk=draft_poll.id).status == "draft"


def test_draft_check_tolerates_polls_service_down(anon, draft_poll, fake_polls):
    choice = ChoiceFactory(poll_id=draft_poll.id)
    fake_polls.stop()
    assert anon.get(URL, {"poll": str(draft_poll.id)}).json()["count"] == 0
    problem(anon.get(detail(choice)), 404)


def test_owner_reads_drafts_without_asking_polls_service(owner, draft_poll, fake_polls):
    ChoiceFactory(poll_id=draft_poll.id)
    assert owner.get(URL, {"poll": str(draft_poll.id)}).json()["count"] == 1
    assert fake_polls.requests == []
