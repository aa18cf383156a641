"""Choices API v3: HAL resources and collections, links to the poll, actions only when allowed."""

from __future__ import annotations

import pytest

from choices.tests.factories import ChoiceFactory

pytestmark = pytest.mark.django_db

URL = "/api/v3/choices/"


def test_choice_is_hal_with_self_and_poll_links(anon, open_poll):
    choice = ChoiceFactory(poll_id=open_poll.id, text="Tea")
    response = anon.get(f"{URL}{choice.id}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/hal+json"
    body = response.json()
    assert body["text"] == "Tea" and body["poll"] == str(open_poll.id)
    assert body["_links"] == {
        "self": {"href": f"/api/v3/choices/{choice.id}/"},
        "poll": {"href": f"/api/v3/polls/{open_poll.id}/"},
    }


def test_owner_sees_edit_and_delete_actions_while_draft(owner, operator, draft_poll):
    choice = ChoiceFactory(poll_id=draft_poll.id)
    for client in (owner, operator):
        links = client.get(f"{URL}{choice.id}/").json()["_links"]
        assert links["edit"] == {"href": f"/api/v3/choices/{choice.id}/", "method": "PATCH"}
        assert links["delete"] == {"href": f"/api/v3/choices/{choice.id}/", "method": "DELETE"}


def test_no_actions_for_others_or_once_open(owner, other, open_poll):
    choice = ChoiceFactory(poll_id=open_poll.id)
    assert set(owner.get(f"{URL}{choice.id}/").json()["_links"]) == {"self", "poll"}
    assert set(other.get(f"{URL}{choice.id}/").json()["_links"]) == {"self", "poll"}


def test_collection_embeds_choices_with_paging_links(owner, draft_poll):
    for i in range(3):
        ChoiceFactory(poll_id=draft_poll.id, position=i)
    response = owner.get(URL, {"poll": str(draft_poll.id), "page_size": 2})
    body = response.json()
    assert response["Content-Type"] == "application/hal+json"
    assert body["count"] == 3
    assert body["_links"]["self"]["href"].startswith("/api/v3/choices/?")
    assert body["_links"]["next"]["href"].startswith("/api/v3/choices/?")
    embedded = body["_embedded"]["choices"]
    assert len(embedded) == 2 and all("edit" in item["_links"] for item in embedded)
    rest = owner.get(body["_links"]["next"]["href"]).json()["_embedded"]["choices"]
    assert len(rest) == 1 and "prev" in owner.get(body["_links"]["next"]["href"]).json()["_links"]


def test_create_answers_hal_with_location(owner, draft_poll):
    response = owner.post(URL, {"poll": str(draft_poll.id), "text": "Tea"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert response["Location"] == f"/api/v3/choices/{body['id']}/"
    assert body["_links"]["self"]["href"] == response["Location"]
    assert "edit" in body["_links"]


def test_v3_errors_stay_problem_json(other, draft_poll):
    response = other.post(URL, {"poll": str(draft_poll.id), "text": "x"}, format="json")
    assert response.status_code == 403 and response["Content-Type"] == "application/problem+json"
