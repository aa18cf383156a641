"""v1: page-number pagination and the deprecation headers."""

from __future__ import annotations

import uuid

import pytest

from polls.tests.factories import PollFactory

pytestmark = pytest.mark.django_db


def test_page_number_pagination_shape_and_links(anonymous) -> None:
    PollFactory.create_batch(25, opened=True)
    first = anonymous.get("/api/v1/polls/")
    body = first.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 25 and len(body["results"]) == 20 and body["previous"] is None
    assert body["next"].endswith("/api/v1/polls/?page=2")
    second = anonymous.get("/api/v1/polls/", {"page": 2}).json()
    assert len(second["results"]) == 5 and second["next"] is None
    assert not {p["id"] for p in body["results"]} & {p["id"] for p in second["results"]}


def test_page_size_is_capped_at_100(anonymous) -> None:
    PollFactory.create_batch(105, opened=True)
    assert len(anonymous.get("/api/v1/polls/", {"page_size": 5}).json()["results"]) == 5
    assert len(anonymous.get("/api/v1/polls/", {"page_size": 1000}).json()["results"]) == 100


def test_invalid_page_is_404_problem(anonymous) -> None:
    response = anonymous.get("/api/v1/polls/", {"page": 99})
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"
    assert anonymous.get("/api/v1/polls/", {"page": "x"}).status_code == 404


def test_newest_first(anonymous) -> None:
    older = PollFactory(opened=True)
    newer = PollFactory(opened=True)
    ids = [p["id"] for p in anonymous.get("/api/v1/polls/").json()["results"]]
    assert ids == [str(newer.id), str(older.id)]


def test_v1_representation(anonymous) -> None:
    poll = PollFactory(opened=True, owner_id=4, owner_username="dora", description="d")
    body = anonymous.get(f"/api/v1/polls/{poll.id}/").json()
    assert body == {
        "id": str(poll.id),
        "question": poll.question,
        "description": "d",
        "status": "open",
        "owner": 4,
        "owner_username": "dora",
        "closes_at": None,
        "voter_policy": None,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }


def test_every_v1_response_announces_deprecation_and_successor(anonymous, owner) -> None:
    poll = PollFactory(opened=True)
    responses = [
        anonymous.get("/api/v1/polls/"),
        anonymous.get(f"/api/v1/polls/{poll.id}/"),
        owner.post("/api/v1/polls/", {"question": "Q?"}),
        owner.post("/api/v1/polls/", {"question": ""}),  # errors too
    ]
    for response in responses:
        assert response["Deprecation"].startswith("@") and int(response["Deprecation"][1:]) > 0
        assert response["Sunset"].endswith("GMT")
        assert 'rel="successor-version"' in response["Link"]
    assert responses[1]["Link"].startswith(f'</api/v2/polls/{poll.id}/>; rel="successor-version"')
    assert "ETag" not in responses[0]


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_current_versions_are_not_deprecated(version, anonymous) -> None:
    response = anonymous.get(f"/api/{version}/polls/")
    assert "Deprecation" not in response and "Sunset" not in response and "Link" not in response


def test_v1_ignores_idempotency_key_and_filters(owner) -> None:
    PollFactory(opened=True, owner_id=7)
    PollFactory(closed=True, owner_id=8)
    assert owner.get("/api/v1/polls/", {"status": "open"}).json()["count"] == 2
    key = uuid.uuid4().hex
    first = owner.post("/api/v1/polls/", {"question": "Q?"}, HTTP_IDEMPOTENCY_KEY=key)
    second = owner.post("/api/v1/polls/", {"question": "Q?"}, HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
