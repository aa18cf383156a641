"""Choices API v2: filtering, cursor pagination, ETag/304, Idempotency-Key."""

from __future__ import annotations

import uuid

import pytest

from choices.models import Choice, VoteProjection
from choices.tests.factories import ChoiceFactory, PollReplicaFactory
from servicekit.events.models import OutboxEvent

pytestmark = pytest.mark.django_db

URL = "/api/v2/choices/"


def test_cursor_pagination_walks_every_choice_once(anon, open_poll):
    created = [ChoiceFactory(poll_id=open_poll.id, position=i) for i in range(5)]
    seen, url = [], f"{URL}?poll={open_poll.id}&page_size=2"
    while url:
        body = anon.get(url).json()
        assert set(body) == {"next", "previous", "results"}
        seen += [item["id"] for item in body["results"]]
        url = body["next"]
    assert seen == [str(c.id) for c in created]


def test_filter_by_poll(anon, open_poll):
    mine = ChoiceFactory(poll_id=open_poll.id)
    ChoiceFactory(poll_id=PollReplicaFactory(status="open").id)
    body = anon.get(URL, {"poll": str(open_poll.id)}).json()
    assert [item["id"] for item in body["results"]] == [str(mine.id)]
    assert anon.get(URL, {"poll": "nope"}).status_code == 400


def test_no_deprecation_headers(anon):
    response = anon.get(URL)
    assert "Deprecation" not in response and "Sunset" not in response


def test_etag_and_304_on_list_and_detail(anon, open_poll):
    choice = ChoiceFactory(poll_id=open_poll.id)
    for url in (f"{URL}{choice.id}/", f"{URL}?poll={open_poll.id}"):
        first = anon.get(url)
        etag = first["ETag"]
        again = anon.get(url, HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304 and again["ETag"] == etag and again.content == b""
    # A change (a vote recorded from an event) changes the representation and its ETag.
    VoteProjection.objects.create(id=uuid.uuid4(), version=1, poll_id=open_poll.id, choice_id=choice.id)
    changed = anon.get(f"{URL}{choice.id}/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


def test_idempotency_key_replays_the_original_creation(owner, draft_poll):
    payload = {"poll": str(draft_poll.id), "text": "Tea"}
    first = owner.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    replay = owner.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
    assert Choice.objects.count() == 1
    assert OutboxEvent.objects.filter(event_type="choice.created").count() == 1


def test_idempotency_key_with_a_different_body_is_422(owner, draft_poll):
    owner.post(URL, {"poll": str(draft_poll.id), "text": "Tea"}, format="json", HTTP_IDEMPOTENCY_KEY="key-2")
    response = owner.post(
        URL, {"poll": str(draft_poll.id), "text": "Coffee"}, format="json", HTTP_IDEMPOTENCY_KEY="key-2"
    )
    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    assert list(Choice.objects.values_list("text", flat=True)) == ["Tea"]


def test_without_idempotency_key_a_retry_is_a_new_request(owner, draft_poll):
    payload = {"poll": str(draft_poll.id), "text": "Tea"}
    assert owner.post(URL, payload, format="json").status_code == 201
    assert owner.post(URL, payload, format="json").status_code == 409  # same text again


def test_permissions_are_the_same_as_v1(other, owner, draft_poll, open_poll):
    assert other.post(URL, {"poll": str(draft_poll.id), "text": "x"}, format="json").status_code == 403
    assert owner.post(URL, {"poll": str(open_poll.id), "text": "x"}, format="json").status_code == 409
    choice = ChoiceFactory(poll_id=open_poll.id)
    assert other.patch(f"{URL}{choice.id}/", {"text": "y"}, format="json").status_code == 403


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_malformed_poll_filter_is_400_and_empty_means_no_filter(anon, open_poll, version):
    ChoiceFactory(poll_id=open_poll.id)
    ChoiceFactory(poll_id=PollReplicaFactory(status="open").id)
    response = anon.get(f"/api/{version}/choices/", {"poll": "nope"})
    assert response.status_code == 400 and "poll" in response.json()["errors"]
    everything = anon.get(f"/api/{version}/choices/", {"poll": ""})
    assert everything.status_code == 200
    body = everything.json()
    items = body["_embedded"]["choices"] if version == "v3" else body["results"]
    assert len(items) == 2
