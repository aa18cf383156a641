"""/internal/polls/{id}/votes/: the ledger's votes by id, service credential only."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from servicekit.testing import service_credentials
from votes.tests.conftest import choices_of
from votes.tests.factories import VoteFactory

pytestmark = pytest.mark.django_db


# --- /internal/polls/{id}/votes/: the ledger by id, for reconciliation -----------------------------------


def _service() -> APIClient:
    client = APIClient()
    client.credentials(**service_credentials("choices"))
    return client


def _ledger(client, poll_id, **params):
    response = client.get(f"/internal/polls/{poll_id}/votes/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_ledger_pages_by_id(open_poll):
    a, b, _ = choices_of(open_poll)
    votes = [VoteFactory(poll_id=open_poll.id, choice_id=(a if n % 2 else b).id, voter_id=n) for n in range(7)]
    VoteFactory(voter_id=1)  # another poll's vote is not listed
    client, seen, after, pages = _service(), [], None, 0
    while True:
        page = _ledger(client, open_poll.id, limit=3, **({"after": after} if after else {}))
        assert page["poll_id"] == str(open_poll.id) and len(page["votes"]) <= 3
        seen += page["votes"]
        pages += 1
        if page["next"] is None:
            break
        assert page["next"] == page["votes"][-1]["id"]
        after = page["next"]
    assert pages == 3
    expected = sorted(votes, key=lambda v: v.id)
    assert seen == [{"id": str(v.id), "choice_id": str(v.choice_id), "version": 1} for v in expected]


def test_a_full_last_page_has_no_next_and_the_default_limit_takes_all(open_poll):
    choice = choices_of(open_poll)[0]
    for n in range(4):
        VoteFactory(poll_id=open_poll.id, choice_id=choice.id, voter_id=n)
    client = _service()
    first = _ledger(client, open_poll.id, limit=2)
    last = _ledger(client, open_poll.id, limit=2, after=first["next"])
    assert len(last["votes"]) == 2 and last["next"] is None
    assert len(_ledger(client, open_poll.id)["votes"]) == 4
    assert _ledger(client, open_poll.id, after="")["next"] is None  # an empty ``after`` is no ``after``
    unknown = uuid.uuid4()
    assert _ledger(client, unknown) == {"poll_id": str(unknown), "votes": [], "next": None}


def test_the_ledger_carries_each_votes_version(voter, open_poll):
    first, second = choices_of(open_poll)[:2]
    vote = voter.post("/api/v2/votes/", {"poll": str(open_poll.id), "choice": str(first.id)}, format="json").json()
    voter.patch(f"/api/v2/votes/{vote['id']}/", {"choice": str(second.id)}, format="json")
    assert _ledger(_service(), open_poll.id)["votes"] == [{"id": vote["id"], "choice_id": str(second.id), "version": 2}]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"after": "nope"}, {"after": 5}])
def test_malformed_ledger_queries_are_400(open_poll, params):
    response = _service().get(f"/internal/polls/{open_poll.id}/votes/", params)
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"


def test_the_ledger_refuses_users(voter, anon, open_poll):
    for client in (voter, anon):
        assert client.get(f"/internal/polls/{open_poll.id}/votes/").status_code in (401, 403)
