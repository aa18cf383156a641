"""/internal/polls/{id}/counts/: the ledger's counts, service credential only."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from servicekit.testing import service_credentials
from votes.tests.conftest import choices_of
from votes.tests.factories import VoteFactory

pytestmark = pytest.mark.django_db


def test_counts_per_choice(open_poll):
    a, b, _ = choices_of(open_poll)
    for voter_id in (1, 2):
        VoteFactory(poll_id=open_poll.id, choice_id=a.id, voter_id=voter_id)
    VoteFactory(poll_id=open_poll.id, choice_id=b.id, voter_id=3)
    client = APIClient()
    client.credentials(**service_credentials())
    body = client.get(f"/internal/polls/{open_poll.id}/counts/").json()
    assert body == {"poll_id": str(open_poll.id), "counts": {str(a.id): 2, str(b.id): 1}}
    assert client.get(f"/internal/polls/{uuid.uuid4()}/counts/").json()["counts"] == {}


def test_counts_refuse_users(voter, anon, open_poll):
    for client in (voter, anon):
        response = client.get(f"/internal/polls/{open_poll.id}/counts/")
        assert response.status_code in (401, 403)
