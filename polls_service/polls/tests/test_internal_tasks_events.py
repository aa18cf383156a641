"""The internal endpoint, the auto-close task, the event handlers and the docs page."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from polls.models import ChoiceReplica, Poll, VoteReplica
from polls.selectors import polls_voted_by, with_choice_count
from polls.tasks import close_expired_polls
from polls.tests.factories import PollFactory
from servicekit.events import Event
from servicekit.events.inbox import apply_batch, apply_event
from servicekit.principal import Principal
from servicekit.testing import auth_headers, service_credentials

pytestmark = pytest.mark.django_db


def test_internal_poll_answers_the_service_credential_only() -> None:
    poll = PollFactory(owner_id=3, version=4)
    client = Client()
    url = f"/internal/polls/{poll.id}/"
    response = client.get(url, **service_credentials("choices"))
    assert response.status_code == 200
    assert response.json() == {
        "id": str(poll.id),
        "owner_id": 3,
        "status": "draft",
        "closes_at": None,
        "voter_policy": None,
        "version": 4,
    }
    assert client.get(url).status_code in (401, 403)
    assert client.get(url, **auth_headers(3, "owner", ("user", "operator"))).status_code in (401, 403)
    assert client.get(url, HTTP_AUTHORIZATION="Service wrong").status_code in (401, 403)
    missing = client.get(f"/internal/polls/{uuid.uuid4()}/", **service_credentials("choices"))
    assert missing.status_code == 404 and missing["Content-Type"] == "application/problem+json"


def test_internal_endpoints_are_not_in_the_public_schema() -> None:
    body = Client().get("/api/schema/polls/v3/", HTTP_ACCEPT="application/json").json()
    assert not [path for path in body["paths"] if path.startswith("/internal/")]


def test_auto_close_task_closes_due_polls(fake_votes) -> None:
    due = PollFactory(opened=True, closes_at=(timezone.now() - timedelta(seconds=5)).replace(microsecond=250000))
    assert close_expired_polls.apply().get() == 1
    assert Poll.objects.get(pk=due.pk).status == "closed"
    assert fake_votes.held[str(due.id)] == {
        "version": due.version + 1,
        "owner_id": due.owner_id,
        "status": "closed",
        "closes_at": due.closes_at.strftime("%Y-%m-%dT%H:%M:%S.250Z"),
    }


def _event(event_type: str, producer: str, data: dict, *, version: int | None = 1) -> Event:
    return Event(
        id=str(uuid.uuid4()),
        type=event_type,
        occurred_at="2026-01-01T00:00:00.000000Z",
        producer=producer,
        aggregate_id=data["id"],
        data=data,
        version=version,
    )


def _choice_count(poll) -> int:
    return with_choice_count(Poll.objects.filter(pk=poll.pk)).get().choice_count


def _choice(poll, event_type: str, choice_id: str, version: int) -> Event:
    return _event(
        event_type, "choices", {"id": choice_id, "poll_id": str(poll.id), "text": "A", "position": 0}, version=version
    )


def test_choice_events_keep_the_choice_count_and_redelivery_changes_nothing() -> None:
    poll = PollFactory()
    created = _choice(poll, "choice.created", str(uuid.uuid4()), 1)
    assert apply_event(created)
    assert apply_event(created) == []  # same event id: the inbox already has it
    assert _choice_count(poll) == 1
    apply_event(_choice(poll, "choice.updated", created.data["id"], 2))
    assert _choice_count(poll) == 1
    apply_event(_choice(poll, "choice.deleted", created.data["id"], 3))
    assert _choice_count(poll) == 0
    apply_event(_choice(poll, "choice.deleted", created.data["id"], 3))  # a duplicate under a new event id
    assert _choice_count(poll) == 0 and ChoiceReplica.objects.get().version == 3


@pytest.mark.parametrize("order", ["in-order", "reversed", "one-batch-reversed"])
def test_choice_projection_is_order_independent(order) -> None:
    poll = PollFactory()
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    events = [
        _choice(poll, "choice.created", a, 1),
        _choice(poll, "choice.created", b, 1),
        _choice(poll, "choice.updated", a, 2),
        _choice(poll, "choice.deleted", a, 3),
        _choice(poll, "choice.created", c, 1),
    ]
    if order == "one-batch-reversed":
        apply_batch(events[::-1])
    else:
        for event in events if order == "in-order" else events[::-1]:
            apply_event(event)
    assert _choice_count(poll) == 2
    assert set(ChoiceReplica.objects.filter(deleted=False).values_list("id", flat=True)) == {uuid.UUID(b), uuid.UUID(c)}
    assert ChoiceReplica.objects.get(pk=a).version == 3


def _vote(poll, event_type: str, vote_id: str, voter_id: int, version: int | None) -> Event:
    data = {"id": vote_id, "poll_id": str(poll.id), "choice_id": str(uuid.uuid4()), "voter_id": voter_id}
    return _event(event_type, "votes", data, version=version)


def test_vote_events_keep_participation() -> None:
    poll = PollFactory(opened=True)
    voter = Principal(id=8, username="v")
    vote_id = str(uuid.uuid4())
    apply_event(_vote(poll, "vote.cast", vote_id, 8, 1))
    assert polls_voted_by(actor=voter, poll_ids=[poll.id]) == {poll.id}
    apply_event(_vote(poll, "vote.retracted", vote_id, 8, 2))
    assert polls_voted_by(actor=voter, poll_ids=[poll.id]) == set()
    assert VoteReplica.objects.get().deleted  # kept as a tombstone of its version
    apply_event(_vote(poll, "vote.cast", str(uuid.uuid4()), 8, 1))  # voting again is a new vote
    assert polls_voted_by(actor=voter, poll_ids=[poll.id]) == {poll.id}


@pytest.mark.parametrize("order", ["retract-first", "one-batch-retract-first", "cast-first"])
def test_vote_projection_is_order_independent(order) -> None:
    poll = PollFactory(opened=True)
    voter = Principal(id=8, username="v")
    vote_id = str(uuid.uuid4())
    cast, retracted = _vote(poll, "vote.cast", vote_id, 8, 1), _vote(poll, "vote.retracted", vote_id, 8, 2)
    if order == "one-batch-retract-first":
        apply_batch([retracted, cast])
    else:
        for event in (retracted, cast) if order == "retract-first" else (cast, retracted):
            apply_event(event)
    assert polls_voted_by(actor=voter, poll_ids=[poll.id]) == set()
    assert VoteReplica.objects.values_list("version", "deleted").get() == (2, True)


def test_a_vote_event_without_a_version_still_orders_a_retraction_last() -> None:
    poll = PollFactory(opened=True)
    vote_id = str(uuid.uuid4())
    apply_event(_vote(poll, "vote.retracted", vote_id, 8, None))
    apply_event(_vote(poll, "vote.cast", vote_id, 8, None))
    assert VoteReplica.objects.get().deleted


def test_one_batch_of_vote_events_is_one_projection_write(django_assert_max_num_queries) -> None:
    poll = PollFactory(opened=True)
    events = [_vote(poll, "vote.cast", str(uuid.uuid4()), voter, 1) for voter in range(50)]
    with django_assert_max_num_queries(5):  # savepoint/inbox/projection/release: not one per event
        apply_batch(events)
    assert VoteReplica.objects.filter(poll_id=poll.id, deleted=False).count() == 50


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
