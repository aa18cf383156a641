"""Behaviour every version shares: permissions, visibility, rules, text input, malformed requests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from polls.models import Poll
from polls.selectors import with_choice_count
from polls.tests.factories import PollFactory

pytestmark = pytest.mark.django_db

VERSIONS = ("v1", "v2", "v3")


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["instance"] and body["type"].startswith("https://")
    return body


@pytest.mark.parametrize("version", VERSIONS)
def test_create_ignores_owner_and_status_in_the_body(version, other) -> None:
    response = other.post(
        f"/api/{version}/polls/",
        {"question": "  Tea or coffee?  ", "owner": 1, "owner_id": 1, "status": "open", "id": "x", "choice_count": 9},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["question"], body["status"], body["owner"]) == ("Tea or coffee?", "draft", other.id)
    poll = with_choice_count(Poll.objects.filter(pk=body["id"])).get()
    assert (poll.owner_id, poll.status, poll.choice_count, poll.owner_username) == (2, "draft", 0, "oscar")
    assert response["Location"] == f"/api/{version}/polls/{poll.id}/"


@pytest.mark.parametrize("version", VERSIONS)
def test_anonymous_may_read_but_not_write(version, anonymous) -> None:
    poll = PollFactory(opened=True)
    assert anonymous.get(f"/api/{version}/polls/{poll.id}/").status_code == 200
    problem(anonymous.post(f"/api/{version}/polls/", {"question": "Q?"}), 401)
    problem(anonymous.patch(f"/api/{version}/polls/{poll.id}/", {"question": "Q?"}), 401)
    problem(anonymous.delete(f"/api/{version}/polls/{poll.id}/"), 401)
    problem(anonymous.post(f"/api/{version}/polls/{poll.id}/close/"), 401)
    assert Poll.objects.get(pk=poll.pk).status == "open"


@pytest.mark.parametrize("version", VERSIONS)
def test_invalid_token_is_401_even_on_reads(version, anonymous) -> None:
    response = anonymous.get(f"/api/{version}/polls/", HTTP_AUTHORIZATION="Bearer not-a-token")
    problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("version", VERSIONS)
def test_drafts_are_visible_only_to_owner_and_operator(version, owner, other, operator, anonymous) -> None:
    draft = PollFactory(owner_id=owner.id)
    public = PollFactory(owner_id=owner.id, opened=True)
    for caller, sees_draft in ((owner, True), (operator, True), (other, False), (anonymous, False)):
        detail = caller.get(f"/api/{version}/polls/{draft.id}/")
        assert detail.status_code == (200 if sees_draft else 404)
        listed = caller.get(f"/api/{version}/polls/").json()
        items = listed["_embedded"]["polls"] if version == "v3" else listed["results"]
        ids = {item["id"] for item in items}
        assert str(public.id) in ids
        assert (str(draft.id) in ids) is sees_draft


@pytest.mark.parametrize("version", VERSIONS)
def test_other_user_may_not_change_a_visible_poll(version, other) -> None:
    poll = PollFactory(owner_id=1, opened=True)
    problem(other.post(f"/api/{version}/polls/{poll.id}/close/"), 403)
    problem(other.delete(f"/api/{version}/polls/{poll.id}/"), 403)
    problem(other.patch(f"/api/{version}/polls/{poll.id}/", {"question": "Mine now?"}), 403)
    poll.refresh_from_db()
    assert poll.status == "open" and poll.question != "Mine now?"


@pytest.mark.parametrize("version", VERSIONS)
def test_other_user_gets_404_for_someone_elses_draft_on_every_path(version, other) -> None:
    draft = PollFactory(owner_id=1)
    base = f"/api/{version}/polls/{draft.id}/"
    for response in (
        other.patch(base, {"question": "x"}),
        other.delete(base),
        other.post(base + "open/"),
        other.post(base + "close/"),
    ):
        problem(response, 404)
    assert Poll.objects.filter(pk=draft.pk, question=draft.question).exists()


@pytest.mark.parametrize("version", VERSIONS)
def test_owner_edits_only_while_draft(version, owner) -> None:
    draft = PollFactory(owner_id=owner.id)
    response = owner.patch(f"/api/{version}/polls/{draft.id}/", {"description": "  more  ", "status": "closed"})
    assert response.status_code == 200, response.content
    assert response.json()["description"] == "more" and response.json()["status"] == "draft"
    opened = PollFactory(owner_id=owner.id, opened=True)
    body = problem(owner.patch(f"/api/{version}/polls/{opened.id}/", {"question": "Late edit?"}), 409)
    assert body["type"].endswith("/poll-not-draft")


@pytest.mark.parametrize("version", VERSIONS)
def test_operator_may_edit_close_and_delete_any_poll(version, operator) -> None:
    draft = PollFactory(owner_id=1)
    assert operator.patch(f"/api/{version}/polls/{draft.id}/", {"question": "Op?"}).status_code == 200
    opened = PollFactory(owner_id=1, opened=True)
    assert operator.post(f"/api/{version}/polls/{opened.id}/close/").json()["status"] == "closed"
    assert operator.delete(f"/api/{version}/polls/{opened.id}/").status_code == 204
    assert not Poll.objects.filter(pk=opened.pk).exists()


@pytest.mark.parametrize("version", VERSIONS)
def test_lifecycle_through_the_api(version, owner, with_choices) -> None:
    poll_id = owner.post(f"/api/{version}/polls/", {"question": "Lunch?"}).json()["id"]
    base = f"/api/{version}/polls/{poll_id}/"
    problem(owner.post(base + "close/"), 409)
    with_choices(Poll.objects.get(pk=poll_id), 1)
    assert problem(owner.post(base + "open/"), 409)["type"].endswith("/not-enough-choices")
    with_choices(Poll.objects.get(pk=poll_id), 2)
    opened = owner.post(base + "open/")
    assert opened.status_code == 200 and opened.json()["status"] == "open"
    problem(owner.post(base + "open/"), 409)
    problem(owner.delete(base), 409)
    assert owner.post(base + "close/").json()["status"] == "closed"
    problem(owner.post(base + "close/"), 409)
    problem(owner.post(base + "open/"), 409)


@pytest.mark.parametrize("version", VERSIONS)
def test_owner_deletes_a_draft(version, owner) -> None:
    draft = PollFactory(owner_id=owner.id)
    response = owner.delete(f"/api/{version}/polls/{draft.id}/")
    assert response.status_code == 204 and response.content == b""
    problem(owner.get(f"/api/{version}/polls/{draft.id}/"), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": "   "}, "question"),
        ({"question": "x" * 501}, "question"),
        ({"question": "bad\x00byte"}, "question"),
        ({"question": "bell\x07"}, "question"),
        ({"question": "two\nlines"}, "question"),
        ({"question": 42}, "question"),
        ({"question": ["a"]}, "question"),
        ({"question": None}, "question"),
        ({}, "question"),
        ({"question": "Q?", "description": "d" * 5001}, "description"),
        ({"question": "Q?", "description": "esc\x1b[31m"}, "description"),
        ({"question": "Q?", "closes_at": "yesterday"}, "closes_at"),
        ({"question": "Q?", "closes_at": 5}, "closes_at"),
    ],
)
def test_invalid_input_is_400_with_field_errors(body, field, owner) -> None:
    for version in VERSIONS:
        response = owner.post(f"/api/{version}/polls/", body)
        assert field in problem(response, 400)["errors"], response.json()
    assert Poll.objects.count() == 0


def test_text_limits_are_inclusive_and_multiline_description_is_kept(owner) -> None:
    body = {"question": "q" * 500, "description": "line one\n\tline two\r\n" + "d" * 4970}
    response = owner.post("/api/v1/polls/", body)
    assert response.status_code == 201, response.content
    poll = Poll.objects.get()
    assert len(poll.question) == 500 and poll.description.startswith("line one\n\tline two")


@pytest.mark.parametrize("version", VERSIONS)
def test_closes_at_in_the_past_is_422(version, owner) -> None:
    body = problem(owner.post(f"/api/{version}/polls/", {"question": "Q?", "closes_at": "2001-01-01T00:00:00Z"}), 422)
    assert "closes_at" in body["errors"] and body["type"].endswith("/closes-at-in-past")
    draft = PollFactory(owner_id=owner.id)
    problem(owner.patch(f"/api/{version}/polls/{draft.id}/", {"closes_at": "2001-01-01T00:00:00Z"}), 422)
    assert Poll.objects.count() == 1


def test_closes_at_in_the_future_is_accepted_and_can_be_cleared(owner) -> None:
    later = (timezone.now() + timedelta(days=1)).isoformat()
    poll_id = owner.post("/api/v1/polls/", {"question": "Q?", "closes_at": later}).json()["id"]
    assert Poll.objects.get(pk=poll_id).closes_at is not None
    response = owner.patch(f"/api/v1/polls/{poll_id}/", {"closes_at": None})
    assert response.status_code == 200 and response.json()["closes_at"] is None


@pytest.mark.parametrize("version", VERSIONS)
def test_malformed_requests_are_problem_json_never_500(version, owner) -> None:
    url = f"/api/{version}/polls/"
    problem(owner.client.post(url, data="{not json", content_type="application/json"), 400)
    problem(owner.client.post(url, data="[1, 2]", content_type="application/json"), 400)
    problem(owner.client.post(url, data='"text"', content_type="application/json"), 400)
    problem(owner.client.post(url, data="question=Q", content_type="application/x-www-form-urlencoded"), 415)
    problem(owner.client.post(url, data="<q/>", content_type="text/xml"), 415)
    too_big = '{"question": "Q?", "description": "' + "x" * (70 * 1024) + '"}'
    problem(owner.client.post(url, data=too_big, content_type="application/json"), 413)
    assert Poll.objects.count() == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_ids_and_methods(version, owner) -> None:
    problem(owner.get(f"/api/{version}/polls/00000000-0000-0000-0000-000000000000/"), 404)
    problem(owner.get(f"/api/{version}/polls/not-a-uuid/"), 404)
    response = owner.client.put(f"/api/{version}/polls/", {}, format="json")
    problem(response, 405)
    poll = PollFactory(owner_id=owner.id)
    problem(owner.client.put(f"/api/{version}/polls/{poll.id}/", {"question": "x"}, format="json"), 405)


def test_unknown_version_is_404(owner) -> None:
    problem(owner.get("/api/v4/polls/"), 404)
    problem(owner.get("/api/v0/polls/"), 404)


def test_entry_point_exists_only_in_v3(anonymous) -> None:
    assert anonymous.get("/api/v3/").status_code == 200
    problem(anonymous.get("/api/v1/"), 404)
    problem(anonymous.get("/api/v2/"), 404)


@pytest.mark.parametrize("version", VERSIONS)
def test_open_with_too_few_choices_is_409_with_choice_services_count(version, owner, with_choices) -> None:
    poll = PollFactory(owner_id=owner.id)
    with_choices(poll, 1)
    body = problem(owner.post(f"/api/{version}/polls/{poll.id}/open/"), 409)
    assert body["type"].endswith("/not-enough-choices") and body["choices"] == 1 and "it has 1" in body["detail"]
    assert Poll.objects.get(pk=poll.pk).status == "draft"


@pytest.mark.parametrize("version", VERSIONS)
def test_transitions_are_503_with_retry_after_while_a_gate_is_unreachable(
    version, owner, operator, with_choices, fake_choices, fake_votes, outbox
) -> None:
    draft = PollFactory(owner_id=owner.id)
    with_choices(draft, 2)
    opened = PollFactory(owner_id=owner.id, opened=True)
    fake_choices.stop()
    fake_votes.stop()
    for caller, path in (
        (owner, f"{draft.id}/open/"),
        (owner, f"{opened.id}/close/"),
    ):
        response = caller.post(f"/api/{version}/polls/{path}")
        problem(response, 503)
        assert int(response["Retry-After"]) >= 1
    response = operator.delete(f"/api/{version}/polls/{opened.id}/")
    problem(response, 503)
    assert int(response["Retry-After"]) >= 1
    statuses = dict(Poll.objects.values_list("id", "status"))
    assert statuses == {draft.id: "draft", opened.id: "open"} and outbox() == []
