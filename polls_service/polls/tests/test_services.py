"""Rules of the poll services, their events and the projections fed by other services' events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from polls import services
from polls.models import Participation, Poll, PollStatus
from polls.tests.factories import PollFactory
from servicekit.errors import Conflict, UnprocessableEntity
from servicekit.principal import Principal

pytestmark = pytest.mark.django_db

OWNER = Principal(id=1, username="olivia")
OTHER = Principal(id=2, username="oscar")
OPERATOR = Principal(id=99, username="opal", roles=frozenset({"user", "operator"}))


def test_create_makes_a_draft_owned_by_the_actor_and_emits_poll_created(outbox) -> None:
    poll = services.poll_create(actor=OTHER, question="Tea or coffee?", description="Morning")
    assert (poll.status, poll.owner_id, poll.owner_username) == ("draft", 2, "oscar")
    (event,) = outbox("poll.created")
    assert event["aggregate_id"] == str(poll.id)
    assert event["data"] == {
        "id": str(poll.id),
        "owner_id": 2,
        "status": "draft",
        "closes_at": None,
        "question": "Tea or coffee?",
    }


def test_create_refuses_anonymous_and_past_closes_at(outbox) -> None:
    with pytest.raises(PermissionDenied):
        services.poll_create(actor=None, question="Q?")
    with pytest.raises(UnprocessableEntity) as excinfo:
        services.poll_create(actor=OWNER, question="Q?", closes_at=timezone.now() - timedelta(minutes=1))
    assert excinfo.value.status_code == 422 and "closes_at" in excinfo.value.errors
    assert Poll.objects.count() == 0 and outbox() == []


def test_update_changes_only_editable_fields_of_a_draft(outbox) -> None:
    poll = PollFactory(owner_id=1)
    updated = services.poll_update(
        poll=poll, actor=OWNER, data={"question": "New?", "status": "open", "owner_id": 2, "choice_count": 9}
    )
    updated.refresh_from_db()
    assert (updated.question, updated.status, updated.owner_id, updated.choice_count) == ("New?", "draft", 1, 0)
    assert [e["data"]["question"] for e in outbox("poll.updated")] == ["New?"]


@pytest.mark.parametrize("state", ["opened", "closed"])
def test_update_outside_draft_is_a_conflict(state: str, outbox) -> None:
    poll = PollFactory(owner_id=1, **{state: True})
    with pytest.raises(Conflict):
        services.poll_update(poll=poll, actor=OWNER, data={"question": "Changed?"})
    poll.refresh_from_db()
    assert poll.question != "Changed?" and outbox() == []


def test_only_owner_or_operator_may_change_a_poll() -> None:
    poll = PollFactory(owner_id=1)
    for call in (services.poll_update, services.poll_delete, services.poll_open, services.poll_close):
        kwargs = {"data": {"question": "x"}} if call is services.poll_update else {}
        with pytest.raises(PermissionDenied):
            call(poll=poll, actor=OTHER, **kwargs)
    assert services.poll_update(poll=poll, actor=OPERATOR, data={"question": "By operator"}).question == "By operator"


def test_delete_a_draft_emits_poll_deleted(outbox) -> None:
    poll = PollFactory(owner_id=1)
    services.poll_delete(poll=poll, actor=OWNER)
    assert not Poll.objects.filter(pk=poll.pk).exists()
    (event,) = outbox("poll.deleted")
    assert event["data"]["status"] == "deleted" and event["data"]["id"] == str(poll.id)


def test_owner_cannot_delete_an_open_poll_but_an_operator_can(outbox) -> None:
    poll = PollFactory(owner_id=1, opened=True)
    with pytest.raises(Conflict):
        services.poll_delete(poll=poll, actor=OWNER)
    assert Poll.objects.filter(pk=poll.pk).exists()
    Participation.objects.create(poll_id=poll.id, voter_id=5)
    services.poll_delete(poll=poll, actor=OPERATOR)
    assert not Poll.objects.filter(pk=poll.pk).exists()
    assert not Participation.objects.filter(poll_id=poll.id).exists()
    assert len(outbox("poll.deleted")) == 1


def test_open_asks_choice_service_and_needs_two_choices(with_choices, fake_choices, outbox) -> None:
    poll = PollFactory(owner_id=1, choice_count=5)  # a stale projection must not decide when the authority answers
    with_choices(poll, 1)
    with pytest.raises(Conflict) as excinfo:
        services.poll_open(poll=poll, actor=OWNER)
    assert excinfo.value.problem_code == "not-enough-choices"
    poll.refresh_from_db()
    assert poll.status == "draft" and outbox("poll.opened") == []
    with_choices(poll, 2)
    opened = services.poll_open(poll=poll, actor=OWNER)
    assert opened.status == "open" and opened.opened_at is not None and opened.choice_count == 2
    assert [e["data"]["status"] for e in outbox("poll.opened")] == ["open"]
    request = fake_choices.requests[-1]
    assert request.path == f"/internal/polls/{poll.id}/choices/"
    assert request.authorization and request.authorization.startswith("Service ")


def test_open_counts_zero_choices_when_choice_service_knows_no_such_poll(fake_choices) -> None:
    poll = PollFactory(owner_id=1, choice_count=3)  # 404 from the authority: no choices at all
    with pytest.raises(Conflict):
        services.poll_open(poll=poll, actor=OWNER)
    poll.refresh_from_db()
    assert poll.status == "draft"


def test_open_falls_back_to_the_projection_when_choice_service_is_down(fake_choices) -> None:
    short = PollFactory(owner_id=1, choice_count=1)
    enough = PollFactory(owner_id=1, choice_count=2)
    fake_choices.fail(f"/internal/polls/{short.id}/choices/", status=503)
    fake_choices.fail(f"/internal/polls/{enough.id}/choices/", status=503)
    with pytest.raises(Conflict):
        services.poll_open(poll=short, actor=OWNER)
    assert services.poll_open(poll=enough, actor=OWNER).status == "open"


def test_open_refuses_non_drafts_and_passed_closes_at(with_choices) -> None:
    for state in ("opened", "closed"):
        poll = PollFactory(owner_id=1, **{state: True})
        with pytest.raises(Conflict):
            services.poll_open(poll=poll, actor=OWNER)
    late = PollFactory(owner_id=1, closes_at=timezone.now() - timedelta(seconds=1))
    with_choices(late, 2)
    with pytest.raises(Conflict) as excinfo:
        services.poll_open(poll=late, actor=OWNER)
    assert excinfo.value.problem_code == "closes-at-passed"


def test_close_only_an_open_poll(outbox) -> None:
    draft = PollFactory(owner_id=1)
    with pytest.raises(Conflict):
        services.poll_close(poll=draft, actor=OWNER)
    poll = PollFactory(owner_id=1, opened=True)
    closed = services.poll_close(poll=poll, actor=OPERATOR)
    assert closed.status == "closed" and closed.closed_at is not None
    with pytest.raises(Conflict):
        services.poll_close(poll=closed, actor=OWNER)
    assert len(outbox("poll.closed")) == 1


def test_close_expired_closes_only_open_polls_past_closes_at(outbox) -> None:
    now = timezone.now()
    due = PollFactory(opened=True, closes_at=now - timedelta(seconds=1))
    later = PollFactory(opened=True, closes_at=now + timedelta(hours=1))
    draft_past = PollFactory(closes_at=now - timedelta(seconds=1))
    no_deadline = PollFactory(opened=True)
    assert services.poll_close_expired(now=now) == 1
    states = {p.pk: Poll.objects.get(pk=p.pk).status for p in (due, later, draft_past, no_deadline)}
    assert states == {due.pk: "closed", later.pk: "open", draft_past.pk: "draft", no_deadline.pk: "open"}
    assert [e["aggregate_id"] for e in outbox("poll.closed")] == [str(due.id)]
    assert services.poll_close_expired(now=now) == 0


def test_status_outside_the_lifecycle_is_refused_by_the_database() -> None:
    poll = PollFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Poll.objects.filter(pk=poll.pk).update(status="gone")


def test_empty_question_is_refused_by_the_database() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        PollFactory(question="")


def test_projections_follow_choice_and_vote_events() -> None:
    poll = PollFactory()
    services.poll_choice_count_adjust(poll_id=poll.id, delta=1)
    services.poll_choice_count_adjust(poll_id=poll.id, delta=1)
    services.poll_choice_count_adjust(poll_id=poll.id, delta=-1)
    poll.refresh_from_db()
    assert poll.choice_count == 1
    services.poll_choice_count_adjust(poll_id=poll.id, delta=-5)
    poll.refresh_from_db()
    assert poll.choice_count == 0
    services.participation_record(poll_id=poll.id, voter_id=7)
    services.participation_record(poll_id=poll.id, voter_id=7)
    assert Participation.objects.filter(poll_id=poll.id, voter_id=7).count() == 1
    services.participation_forget(poll_id=poll.id, voter_id=7)
    assert not Participation.objects.exists()


def test_poll_status_choices_are_the_lifecycle() -> None:
    assert PollStatus.values == ["draft", "open", "closed"]
