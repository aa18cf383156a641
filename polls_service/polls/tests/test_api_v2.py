"""v2: filtering, ordering, cursor pagination, ETag / If-None-Match and Idempotency-Key."""

from __future__ import annotations

import threading
import uuid
from urllib.parse import urlsplit

import pytest
from django.db import connection

from polls.models import Poll
from polls.tests.factories import PollFactory

pytestmark = pytest.mark.django_db


# Keys live in the cache (Redis), which outlives the test database: unique per run.
KEYS = {name: f"{name}-{uuid.uuid4().hex}" for name in ("key-1", "key-2", "shared", "bad", "race")}


def ids(response) -> list[str]:
    return [item["id"] for item in response.json()["results"]]


def test_filters_by_status_owner_and_search(owner) -> None:
    tea = PollFactory(opened=True, owner_id=5, question="Tea time?")
    coffee = PollFactory(closed=True, owner_id=6, question="Coffee?", description="with TEA leaves")
    mine = PollFactory(owner_id=owner.id, question="My draft")
    assert ids(owner.get("/api/v2/polls/", {"status": "open"})) == [str(tea.id)]
    assert ids(owner.get("/api/v2/polls/", {"status": "draft"})) == [str(mine.id)]
    assert ids(owner.get("/api/v2/polls/", {"owner": 6})) == [str(coffee.id)]
    assert sorted(ids(owner.get("/api/v2/polls/", {"search": "tea"}))) == sorted([str(tea.id), str(coffee.id)])
    assert ids(owner.get("/api/v2/polls/", {"search": "tea", "status": "closed"})) == [str(coffee.id)]


def test_filters_never_reveal_other_users_drafts(other) -> None:
    PollFactory(owner_id=1, question="Secret draft")
    assert ids(other.get("/api/v2/polls/", {"status": "draft"})) == []
    assert ids(other.get("/api/v2/polls/", {"owner": 1, "search": "secret"})) == []


@pytest.mark.parametrize(
    "params",
    [{"status": "archived"}, {"owner": "abc"}, {"owner": "1.5"}, {"owner": str(2**64)}, {"search": "a\x00b"}],
)
def test_invalid_filters_are_400(params, anonymous) -> None:
    response = anonymous.get("/api/v2/polls/", params)
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"


def test_ordering(anonymous) -> None:
    first = PollFactory(opened=True)
    second = PollFactory(opened=True)
    assert ids(anonymous.get("/api/v2/polls/")) == [str(second.id), str(first.id)]
    assert ids(anonymous.get("/api/v2/polls/", {"ordering": "created_at"})) == [str(first.id), str(second.id)]
    first.save()  # bumps updated_at
    assert ids(anonymous.get("/api/v2/polls/", {"ordering": "-updated_at"}))[0] == str(first.id)


def test_cursor_pagination_walks_every_item_once(anonymous) -> None:
    created = {str(p.id) for p in PollFactory.create_batch(7, opened=True)}
    seen: list[str] = []
    url = "/api/v2/polls/?page_size=3"
    pages = 0
    while url:
        body = anonymous.get(url).json()
        assert set(body) == {"next", "previous", "results"}
        seen += [item["id"] for item in body["results"]]
        url = body["next"] and (urlsplit(body["next"]).path + "?" + urlsplit(body["next"]).query)
        pages += 1
    assert pages == 3 and len(seen) == 7 and set(seen) == created


def test_invalid_cursor_is_404(anonymous) -> None:
    response = anonymous.get("/api/v2/polls/", {"cursor": "bogus"})
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"


def test_page_size_capped_at_100(anonymous) -> None:
    PollFactory.create_batch(101, opened=True)
    assert len(anonymous.get("/api/v2/polls/", {"page_size": 500}).json()["results"]) == 100


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_etag_and_if_none_match(version, owner) -> None:
    poll = PollFactory(owner_id=owner.id)
    url = f"/api/{version}/polls/{poll.id}/"
    first = owner.get(url)
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert owner.get(url)["ETag"] == etag  # stable
    cached = owner.get(url, HTTP_IF_NONE_MATCH=etag)
    assert cached.status_code == 304 and cached.content == b"" and cached["ETag"] == etag
    assert owner.get(url, HTTP_IF_NONE_MATCH=f'"other", {etag}').status_code == 304
    assert owner.get(url, HTTP_IF_NONE_MATCH='"other"').status_code == 200
    owner.patch(url, {"question": "Changed?"})
    changed = owner.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    listing = owner.get(f"/api/{version}/polls/")
    assert owner.get(f"/api/{version}/polls/", HTTP_IF_NONE_MATCH=listing["ETag"]).status_code == 304


def test_etag_is_not_sent_on_errors_or_writes(owner) -> None:
    assert "ETag" not in owner.get("/api/v2/polls/00000000-0000-0000-0000-000000000000/")
    assert "ETag" not in owner.post("/api/v2/polls/", {"question": "Q?"})


def test_idempotency_key_replays_the_original_response(owner) -> None:
    first = owner.post("/api/v2/polls/", {"question": "Once?"}, HTTP_IDEMPOTENCY_KEY=KEYS["key-1"])
    replay = owner.post("/api/v2/polls/", {"question": "Once?"}, HTTP_IDEMPOTENCY_KEY=KEYS["key-1"])
    assert first.status_code == replay.status_code == 201
    assert replay.content == first.content and replay["Location"] == first["Location"]
    assert replay["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert Poll.objects.count() == 1


def test_idempotency_key_with_a_different_body_is_422(owner) -> None:
    owner.post("/api/v2/polls/", {"question": "Once?"}, HTTP_IDEMPOTENCY_KEY=KEYS["key-2"])
    response = owner.post("/api/v2/polls/", {"question": "Twice?"}, HTTP_IDEMPOTENCY_KEY=KEYS["key-2"])
    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/idempotency-key-reused")
    assert Poll.objects.count() == 1


def test_idempotency_keys_are_per_caller_and_per_path(owner, other, with_choices) -> None:
    a = owner.post("/api/v2/polls/", {"question": "Same?"}, HTTP_IDEMPOTENCY_KEY=KEYS["shared"])
    b = other.post("/api/v2/polls/", {"question": "Same?"}, HTTP_IDEMPOTENCY_KEY=KEYS["shared"])
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]
    poll = Poll.objects.get(pk=a.json()["id"])
    with_choices(poll, 2)
    opened = owner.post(f"/api/v2/polls/{poll.id}/open/", HTTP_IDEMPOTENCY_KEY=KEYS["shared"])
    assert opened.status_code == 200
    again = owner.post(f"/api/v2/polls/{poll.id}/open/", HTTP_IDEMPOTENCY_KEY=KEYS["shared"])
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"  # not 409: replayed


def test_errors_are_replayed_too_but_not_server_failures(owner) -> None:
    bad = owner.post("/api/v2/polls/", {"question": ""}, HTTP_IDEMPOTENCY_KEY=KEYS["bad"])
    replay = owner.post("/api/v2/polls/", {"question": ""}, HTTP_IDEMPOTENCY_KEY=KEYS["bad"])
    assert bad.status_code == replay.status_code == 400 and replay["Idempotent-Replayed"] == "true"
    assert replay["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\tkey", "ünïcode"])
def test_malformed_idempotency_key_is_400(key, owner) -> None:
    response = owner.post("/api/v2/polls/", {"question": "Q?"}, HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400, response.content
    assert Poll.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_execute_once(owner) -> None:
    from polls.tests.conftest import make_caller

    results: list[int] = []
    barrier = threading.Barrier(4)

    def post() -> None:
        caller = make_caller(owner.id, "olivia")
        barrier.wait()
        try:
            response = caller.post("/api/v3/polls/", {"question": "Race?"}, HTTP_IDEMPOTENCY_KEY=KEYS["race"])
            results.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Poll.objects.filter(question="Race?").count() == 1
    assert results.count(201) >= 1 and set(results) <= {201, 409}


def test_empty_filter_values_mean_no_filter_and_format_is_not_an_override(anonymous) -> None:
    PollFactory(opened=True)
    PollFactory(closed=True)
    assert len(ids(anonymous.get("/api/v2/polls/", {"status": "", "owner": ""}))) == 2
    response = anonymous.get("/api/v3/polls/", {"format": "xml"})
    assert response.status_code == 200 and response["Content-Type"] == "application/hal+json"
