"""The internal endpoint, the auto-close task, the event handlers and the docs page."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from polls.models import Participation, Poll
from polls.tasks import close_expired_polls
from polls.tests.factories import PollFactory
from servicekit.events import Event
from servicekit.events.inbox import apply_event
from servicekit.testing import auth_headers, service_credentials

pytestmark = pytest.mark.django_db


def test_internal_poll_answers_the_service_credential_only() -> None:
    poll = PollFactory(owner_id=3)
    client = Client()
    url = f"/internal/polls/{poll.id}/"
    response = client.get(url, **service_credentials())
    assert response.status_code == 200
    assert response.json() == {"id": str(poll.id), "owner_id": 3, "status": "draft", "closes_at": None}
    assert client.get(url).status_code in (401, 403)
    assert client.get(url, **auth_headers(3, "owner", ("user", "operator"))).status_code in (401, 403)
    assert client.get(url, HTTP_AUTHORIZATION="Service wrong").status_code in (401, 403)
    missing = client.get(f"/internal/polls/{uuid.uuid4()}/", **service_credentials())
    assert missing.status_code == 404 and missing["Content-Type"] == "application/problem+json"


def test_internal_endpoints_are_not_in_the_public_schema() -> None:
    body = Client().get("/api/schema/polls/v3/", HTTP_ACCEPT="application/json").json()
    assert not [path for path in body["paths"] if path.startswith("/internal/")]


def test_auto_close_task_closes_due_polls() -> None:
    due = PollFactory(opened=True, closes_at=timezone.now() - timedelta(seconds=5))
    assert close_expired_polls.apply().get() == 1
    assert Poll.objects.get(pk=due.pk).status == "closed"


def _event(event_type: str, producer: str, data: dict) -> Event:
    return Event(
        id=str(uuid.uuid4()),
        type=event_type,
        occurred_at="2026-01-01T00:00:00.000000Z",
        producer=producer,
        aggregate_id=data["id"],
        data=data,
    )


def test_choice_events_keep_the_choice_count_and_redelivery_changes_nothing() -> None:
    poll = PollFactory()
    created = _event(
        "choice.created", "choices", {"id": str(uuid.uuid4()), "poll_id": str(poll.id), "text": "A", "position": 0}
    )
    assert apply_event(created)
    assert apply_event(created) == []  # same event id: the inbox already has it
    poll.refresh_from_db()
    assert poll.choice_count == 1
    apply_event(_event("choice.deleted", "choices", {**created.data}))
    poll.refresh_from_db()
    assert poll.choice_count == 0


def test_vote_events_keep_participation() -> None:
    poll = PollFactory(opened=True)
    data = {"id": str(uuid.uuid4()), "poll_id": str(poll.id), "choice_id": str(uuid.uuid4()), "voter_id": 8}
    apply_event(_event("vote.cast", "votes", data))
    assert Participation.objects.filter(poll_id=poll.id, voter_id=8).exists()
    apply_event(_event("vote.retracted", "votes", data))
    assert not Participation.objects.exists()


def test_events_about_unknown_polls_are_ignored() -> None:
    data = {"id": str(uuid.uuid4()), "poll_id": str(uuid.uuid4()), "text": "A", "position": 0}
    assert apply_event(_event("choice.created", "choices", data))
    assert Poll.objects.count() == 0


def test_docs_page_lists_all_nine_schemas() -> None:
    response = Client().get("/api/docs/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    for service in ("polls", "choices", "votes"):
        for version in ("v1", "v2", "v3"):
            assert f'href="/api/schema/{service}/{version}/"' in html
    assert "/static/polls/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "/static/polls/polls/api_docs.js" in html


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_schema_per_version_documents_only_that_version(version) -> None:
    response = Client().get(f"/api/schema/polls/{version}/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["version"].startswith(version[1:])
    assert schema["paths"] and all(path.startswith(f"/api/{version}/") for path in schema["paths"])
    create = schema["paths"][f"/api/{version}/polls/"]["post"]
    assert {"201", "400", "401", "403", "413", "415", "429"} <= set(create["responses"])
    assert create["responses"]["400"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    read = schema["paths"][f"/api/{version}/polls/{{id}}/"]["get"]
    assert ("304" in read["responses"]) is (version != "v1")
    assert read.get("deprecated", False) is (version == "v1")
    open_op = schema["paths"][f"/api/{version}/polls/{{id}}/open/"]["post"]
    assert {"409", "503", "404"} <= set(open_op["responses"]) and "requestBody" not in open_op
    assert ("/api/v3/" in schema["paths"]) is (version == "v3")
