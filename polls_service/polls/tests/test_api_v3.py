"""v3: HAL documents, collection shape, and links that depend on the caller and the poll's state."""

from __future__ import annotations

import pytest

from polls.tests.factories import PollFactory, VoteReplicaFactory

pytestmark = pytest.mark.django_db

RELATED = {"self", "choices", "results"}


def links(caller, poll) -> dict:
    response = caller.get(f"/api/v3/polls/{poll.id}/")
    assert response.status_code == 200, response.content
    return response.json()["_links"]


def test_resource_is_hal_with_gateway_paths(anonymous) -> None:
    poll = PollFactory(opened=True)
    response = anonymous.get(f"/api/v3/polls/{poll.id}/")
    assert response["Content-Type"] == "application/hal+json"
    body = response.json()
    assert body["id"] == str(poll.id) and body["status"] == "open"
    assert body["_links"] == {
        "self": {"href": f"/api/v3/polls/{poll.id}/"},
        "choices": {"href": f"/api/v3/choices/?poll={poll.id}"},
        "results": {"href": f"/api/v3/results/{poll.id}/"},
    }


def test_plain_json_is_acceptable_too(anonymous) -> None:
    poll = PollFactory(opened=True)
    response = anonymous.get(f"/api/v3/polls/{poll.id}/", HTTP_ACCEPT="application/json")
    assert response["Content-Type"] == "application/json" and "_links" in response.json()


def test_owner_of_a_draft_may_edit_delete_open_and_add_choices(owner) -> None:
    poll = PollFactory(owner_id=owner.id)
    got = links(owner, poll)
    href = f"/api/v3/polls/{poll.id}/"
    assert set(got) == RELATED | {"edit", "delete", "open", "add_choice"}
    assert got["edit"] == {"href": href, "method": "PATCH"}
    assert got["delete"] == {"href": href, "method": "DELETE"}
    assert got["open"] == {"href": f"{href}open/", "method": "POST"}
    assert got["add_choice"] == {"href": "/api/v3/choices/", "method": "POST"}


def test_open_poll_links_per_role(owner, other, operator, anonymous) -> None:
    poll = PollFactory(owner_id=owner.id, opened=True)
    close = {"href": f"/api/v3/polls/{poll.id}/close/", "method": "POST"}
    vote = {"href": "/api/v3/votes/", "method": "POST"}
    assert links(owner, poll) == {**links(anonymous, poll), "close": close, "vote": vote}
    assert set(links(other, poll)) == RELATED | {"vote"}
    assert set(links(operator, poll)) == RELATED | {"close", "delete", "vote"}
    assert set(links(anonymous, poll)) == RELATED


def test_vote_link_disappears_once_the_caller_has_voted(other, owner) -> None:
    poll = PollFactory(owner_id=owner.id, opened=True)
    vote = VoteReplicaFactory(poll_id=poll.id, voter_id=other.id)
    assert "vote" not in links(other, poll)
    assert "vote" in links(owner, poll)
    listed = other.get("/api/v3/polls/").json()["_embedded"]["polls"]
    assert "vote" not in listed[0]["_links"]
    vote.deleted, vote.version = True, 2  # retracted: the caller may vote again
    vote.save()
    assert "vote" in links(other, poll)


def test_closed_poll_offers_no_actions_except_operator_delete(owner, operator) -> None:
    poll = PollFactory(owner_id=owner.id, closed=True)
    assert set(links(owner, poll)) == RELATED
    assert set(links(operator, poll)) == RELATED | {"delete"}


def test_other_users_never_get_owner_actions(other) -> None:
    for poll in (PollFactory(owner_id=1, opened=True), PollFactory(owner_id=1, closed=True)):
        assert not {"edit", "delete", "open", "close", "add_choice"} & set(links(other, poll))


def test_collection_is_hal_with_count_links_and_embedded(anonymous) -> None:
    PollFactory.create_batch(5, opened=True)
    first = anonymous.get("/api/v3/polls/?page_size=2")
    assert first["Content-Type"] == "application/hal+json"
    body = first.json()
    assert set(body) == {"count", "_links", "_embedded"}
    assert body["count"] == 5 and len(body["_embedded"]["polls"]) == 2
    assert body["_links"]["self"] == {"href": "/api/v3/polls/?page_size=2"}
    assert "prev" not in body["_links"]
    next_href = body["_links"]["next"]["href"]
    assert next_href.startswith("/api/v3/polls/?") and "cursor=" in next_href
    second = anonymous.get(next_href).json()
    assert second["_links"]["prev"]["href"].startswith("/api/v3/polls/?")
    assert all("_links" in item for item in second["_embedded"]["polls"])


def test_write_responses_are_hal(owner, with_choices) -> None:
    created = owner.post("/api/v3/polls/", {"question": "HAL?"})
    assert created.status_code == 201 and created["Content-Type"] == "application/hal+json"
    assert "open" in created.json()["_links"]
    poll_id = created.json()["id"]
    from polls.models import Poll

    with_choices(Poll.objects.get(pk=poll_id), 3)
    opened = owner.post(f"/api/v3/polls/{poll_id}/open/").json()
    assert set(opened["_links"]) == RELATED | {"close", "vote"}


def test_entry_point_links_every_collection_and_auth(anonymous) -> None:
    response = anonymous.get("/api/v3/")
    assert response.status_code == 200 and response["Content-Type"] == "application/hal+json"
    got = response.json()["_links"]
    assert got["polls"] == {"href": "/api/v3/polls/"}
    assert got["choices"] == {"href": "/api/v3/choices/"}
    assert got["votes"] == {"href": "/api/v3/votes/"}
    assert got["results"] == {"href": "/api/v3/results/{poll}/", "templated": True}
    assert got["register"] == {"href": "/api/v3/auth/register/", "method": "POST"}
    assert got["token"] == {"href": "/api/v3/auth/token/", "method": "POST"}
    assert got["refresh"]["href"] == "/api/v3/auth/token/refresh/"
    assert got["logout"]["href"] == "/api/v3/auth/logout/"
    assert got["me"] == {"href": "/api/v3/auth/me/"}
    assert got["docs"] == {"href": "/api/docs/"}
    # Every non-templated link of the entry point resolves in this service or is another service's path.
    for name in ("polls", "register", "token", "me"):
        assert anonymous.get(got[name]["href"]).status_code != 404
