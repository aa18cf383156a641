"""/internal/ endpoints: service credential only."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from choices.models import PollReplica
from choices.tests.factories import ChoiceFactory, PollReplicaFactory
from servicekit.testing import service_credentials
from servicekit.testing_fixtures import OWNER_ID

pytestmark = pytest.mark.django_db


@pytest.fixture
def service() -> APIClient:
    client = APIClient()
    client.credentials(**service_credentials("votes"))
    return client


def test_internal_choice(service):
    choice = ChoiceFactory(poll_id=PollReplicaFactory().id, text="Tea", position=3)
    response = service.get(f"/internal/choices/{choice.id}/")
    assert response.status_code == 200
    assert response.json() == {
        "id": str(choice.id),
        "poll_id": str(choice.poll_id),
        "text": "Tea",
        "position": 3,
        "version": 1,
    }
    assert service.get(f"/internal/choices/{uuid.uuid4()}/").status_code == 404


def test_internal_poll_choices_in_order(service):
    poll = PollReplicaFactory()
    b = ChoiceFactory(poll_id=poll.id, text="B", position=2)
    a = ChoiceFactory(poll_id=poll.id, text="A", position=1)
    body = service.get(f"/internal/polls/{poll.id}/choices/").json()
    assert body == {
        "poll_id": str(poll.id),
        "choices": [
            {"id": str(a.id), "text": "A", "position": 1, "version": 1},
            {"id": str(b.id), "text": "B", "position": 2, "version": 1},
        ],
    }
    empty = service.get(f"/internal/polls/{uuid.uuid4()}/choices/").json()
    assert empty["choices"] == []


def test_internal_endpoints_refuse_users_and_anonymous(owner, anon):
    choice = ChoiceFactory()
    for client in (owner, anon):
        for url in (f"/internal/choices/{choice.id}/", f"/internal/polls/{choice.poll_id}/choices/"):
            response = client.get(url)
            assert response.status_code in (401, 403)
            assert response["Content-Type"] == "application/problem+json"
        response = client.put(
            f"/internal/polls/{choice.poll_id}/state/",
            {"version": 9, "owner_id": 1, "status": "open", "closes_at": None},
            format="json",
        )
        assert response.status_code in (401, 403)
        assert response["Content-Type"] == "application/problem+json"


def test_wrong_service_token_is_refused(anon):
    choice = ChoiceFactory()
    response = anon.get(f"/internal/choices/{choice.id}/", HTTP_AUTHORIZATION="Service wrong-token")
    assert response.status_code in (401, 403)
    response = anon.put(
        f"/internal/polls/{choice.poll_id}/state/",
        {"version": 9, "owner_id": 1, "status": "open", "closes_at": None},
        format="json",
        HTTP_AUTHORIZATION="Service wrong-token",
    )
    assert response.status_code in (401, 403)
    assert PollReplica.objects.get(pk=choice.poll_id).version == 1


def test_internal_reads_carry_the_choice_version(service, owner):
    poll = PollReplicaFactory(owner_id=OWNER_ID, status="draft")
    choice = ChoiceFactory(poll_id=poll.id, text="Tea")
    assert owner.patch(f"/api/v1/choices/{choice.id}/", {"text": "Green tea"}, format="json").status_code == 200
    assert service.get(f"/internal/choices/{choice.id}/").json()["version"] == 2
    listed = service.get(f"/internal/polls/{poll.id}/choices/").json()["choices"]
    assert [(c["text"], c["version"]) for c in listed] == [("Green tea", 2)]
