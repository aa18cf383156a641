"""Votes API v3: HAL votes (links to poll and choice, change/retract while open), collections, results."""

from __future__ import annotations

import pytest

from votes.models import PollReplica
from votes.tests.conftest import choices_of

pytestmark = pytest.mark.django_db

VOTES = "/api/v3/votes/"


def test_vote_links_and_actions_while_open(voter, open_poll):
    choice = choices_of(open_poll)[0]
    response = voter.post(VOTES, {"poll": str(open_poll.id), "choice": str(choice.id)}, format="json")
    assert response.status_code == 201
    assert response["Content-Type"] == "application/hal+json"
    body = response.json()
    href = f"/api/v3/votes/{body['id']}/"
    assert response["Location"] == href
    assert body["_links"] == {
        "self": {"href": href},
        "poll": {"href": f"/api/v3/polls/{open_poll.id}/"},
        "choice": {"href": f"/api/v3/choices/{choice.id}/"},
        "change": {"href": href, "method": "PATCH"},
        "retract": {"href": href, "method": "DELETE"},
    }


def test_no_actions_once_closed(voter, open_poll):
    body = voter.post(
        VOTES, {"poll": str(open_poll.id), "choice": str(choices_of(open_poll)[0].id)}, format="json"
    ).json()
    PollReplica.objects.filter(pk=open_poll.pk).update(status="closed")
    links = voter.get(f"{VOTES}{body['id']}/").json()["_links"]
    assert set(links) == {"self", "poll", "choice"}


def test_collection_embeds_votes(voter, open_poll):
    voter.post(VOTES, {"poll": str(open_poll.id), "choice": str(choices_of(open_poll)[0].id)}, format="json")
    response = voter.get(VOTES)
    body = response.json()
    assert response["Content-Type"] == "application/hal+json"
    assert body["count"] == 1 and body["_links"]["self"]["href"] == "/api/v3/votes/"
    assert body["_embedded"]["votes"][0]["poll"] == str(open_poll.id)


def test_change_works_in_v3(voter, open_poll):
    first, second = choices_of(open_poll)[:2]
    body = voter.post(VOTES, {"poll": str(open_poll.id), "choice": str(first.id)}, format="json").json()
    response = voter.patch(body["_links"]["change"]["href"], {"choice": str(second.id)}, format="json")
    assert response.status_code == 200 and response.json()["choice"] == str(second.id)
    assert voter.delete(body["_links"]["retract"]["href"]).status_code == 204


def test_results_are_hal_with_links(anon, open_poll):
    response = anon.get(f"/api/v3/results/{open_poll.id}/")
    assert response.status_code == 200 and response["Content-Type"] == "application/hal+json"
    body = response.json()
    assert body["_links"] == {
        "self": {"href": f"/api/v3/results/{open_poll.id}/"},
        "poll": {"href": f"/api/v3/polls/{open_poll.id}/"},
    }
    assert len(body["choices"]) == 3 and body["total"] == 0
