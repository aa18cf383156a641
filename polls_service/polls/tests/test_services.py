"""Rules of the poll services, their events and the projections fed by other services' events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from polls import services
from polls.models import Poll, PollStatus, VoteReplica
from polls.selectors import with_choice_count
from polls.tests.factories import PollFactory, VoteReplicaFactory
from servicekit.errors import Conflict, ServiceUnavailable, UnprocessableEntity
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
    assert poll.version == 1 and event["version"] == 1
    assert event["data"] == {
        "id": str(poll.id),
        "owner_id": 2,
        "status": "draft",
        "closes_at": None,
        "question": "Tea or coffee?",
        "voter_policy": None,
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
        poll=poll,
        actor=OWNER,
        data={"question": "New?", "status": "open", "owner_id": 2, "choice_count": 9, "version": 9},
    )
    updated = with_choice_count(Poll.objects.filter(pk=poll.pk)).get()
    assert (updated.question, updated.status, updated.owner_id, updated.choice_count) == ("New?", "draft", 1, 0)
    assert updated.version == 2
    assert [(e["data"]["question"], e["version"]) for e in outbox("poll.updated")] == [("New?", 2)]
    services.poll_update(poll=updated, actor=OWNER, data={"description": "Again"})
    assert Poll.objects.get(pk=poll.pk).version == 3
    assert [e["version"] for e in outbox("poll.updated")] == [2, 3]
    assert services.poll_update(poll=updated, actor=OWNER, data={}).version == 3  # no change, no new version


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


def test_delete_a_draft_emits_poll_deleted(outbox, fake_votes) -> None:
    poll = PollFactory(owner_id=1)
    services.poll_delete(poll=poll, actor=OWNER)
    assert not Poll.objects.filter(pk=poll.pk).exists()
    (event,) = outbox("poll.deleted")
    assert event["data"]["status"] == "deleted" and event["data"]["id"] == str(poll.id)
    assert event["version"] == poll.version + 1
    assert fake_votes.commands == []  # a draft takes no votes: nothing to seal


def test_owner_cannot_delete_an_open_poll_but_an_operator_can(outbox, fake_votes) -> None:
    poll = PollFactory(owner_id=1, opened=True)
    with pytest.raises(Conflict):
        services.poll_delete(poll=poll, actor=OWNER)
    assert Poll.objects.filter(pk=poll.pk).exists() and fake_votes.commands == []
    VoteReplicaFactory(poll_id=poll.id, voter_id=5)
    services.poll_delete(poll=poll, actor=OPERATOR)
    assert not Poll.objects.filter(pk=poll.pk).exists()
    assert not VoteReplica.objects.filter(poll_id=poll.id).exists()
    (event,) = outbox("poll.deleted")
    assert event["version"] == poll.version + 1
    # vote_service sealed the poll at the deletion's version before the deletion committed
    assert fake_votes.commands_for(poll) == [
        {"version": poll.version + 1, "owner_id": 1, "status": "deleted", "closes_at": None}
    ]


def _row(poll) -> dict:
    return Poll.objects.filter(pk=poll.pk).values().get()


def test_open_freezes_choices_in_choice_service_which_counts_them(with_choices, fake_choices, outbox) -> None:
    closes_at = (timezone.now() + timedelta(days=1)).replace(microsecond=123456)
    poll = PollFactory(owner_id=1, closes_at=closes_at)
    with_choices(poll, 1)
    before = _row(poll)
    with pytest.raises(Conflict) as excinfo:
        services.poll_open(poll=poll, actor=OWNER)
    assert excinfo.value.problem_code == "not-enough-choices" and excinfo.value.status_code == 409
    assert "it has 1" in str(excinfo.value.detail) and excinfo.value.extensions == {"choices": 1}
    assert _row(poll) == before and outbox() == []  # still a draft, same version: nothing changed
    command = {
        "version": poll.version + 1,
        "owner_id": 1,
        "status": "open",
        "closes_at": closes_at.strftime("%Y-%m-%dT%H:%M:%S.123Z"),
        "min_choices": 2,
    }
    assert fake_choices.commands_for(poll) == [command]
    with_choices(poll, 2)
    opened = services.poll_open(poll=poll, actor=OWNER)
    assert opened.status == "open" and opened.opened_at is not None and opened.version == poll.version + 1
    assert _row(poll)["version"] == poll.version + 1
    (event,) = outbox("poll.opened")
    assert (event["data"]["status"], event["version"]) == ("open", poll.version + 1)
    assert event["data"]["closes_at"] == command["closes_at"]  # the gate and the event agree on the state
    assert fake_choices.commands_for(poll) == [command, command]
    assert fake_choices.held[str(poll.id)]["status"] == "open"
    request = fake_choices.requests[-1]
    assert (request.method, request.path) == ("PUT", f"/internal/polls/{poll.id}/state/")
    assert request.authorization and request.authorization.startswith("Service ")


def test_open_of_a_poll_choice_service_holds_no_choices_of_is_refused(fake_choices) -> None:
    poll = PollFactory(owner_id=1)
    with pytest.raises(Conflict) as excinfo:
        services.poll_open(poll=poll, actor=OWNER)
    assert excinfo.value.problem_code == "not-enough-choices" and "it has 0" in str(excinfo.value.detail)
    poll.refresh_from_db()
    assert poll.status == "draft" and poll.version == 1


@pytest.mark.parametrize("failure", ["5xx", "unreachable", "breaker-open"])
def test_open_when_choice_service_cannot_answer_is_503_and_changes_nothing(
    failure, with_choices, fake_choices, outbox
) -> None:
    poll = PollFactory(owner_id=1)
    with_choices(poll, 3)
    _break(fake_choices, failure, poll, clients_name="_choices_client")
    before = _row(poll)
    with pytest.raises(ServiceUnavailable) as excinfo:
        services.poll_open(poll=poll, actor=OWNER)
    assert excinfo.value.status_code == 503 and int(excinfo.value.headers["Retry-After"]) >= 1
    assert _row(poll) == before and outbox() == []
    assert str(poll.id) not in fake_choices.held


def _break(upstream, failure: str, poll, *, clients_name: str) -> None:
    """Make a gate fail: answer 503, refuse connections, or (breaker open) never be asked at all."""
    from polls import clients

    if failure == "5xx":
        upstream.fail(upstream.state_path(poll), status=503)
    elif failure == "unreachable":
        upstream.stop()
    else:
        getattr(clients, clients_name)().breaker.open()


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


def test_close_only_an_open_poll(outbox, fake_votes) -> None:
    draft = PollFactory(owner_id=1)
    with pytest.raises(Conflict):
        services.poll_close(poll=draft, actor=OWNER)
    poll = PollFactory(owner_id=1, opened=True)
    closed = services.poll_close(poll=poll, actor=OPERATOR)
    assert closed.status == "closed" and closed.closed_at is not None and closed.version == poll.version + 1
    with pytest.raises(Conflict):
        services.poll_close(poll=closed, actor=OWNER)
    (event,) = outbox("poll.closed")
    assert event["version"] == poll.version + 1
    # vote_service sealed the poll at the close's version before it committed; the draft was never sent
    assert fake_votes.commands == [
        {
            "path": fake_votes.state_path(poll),
            "version": poll.version + 1,
            "owner_id": 1,
            "status": "closed",
            "closes_at": None,
        }
    ]
    assert fake_votes.held[str(poll.id)]["status"] == "closed"


@pytest.mark.parametrize("failure", ["5xx", "unreachable", "breaker-open"])
def test_close_when_vote_service_cannot_seal_is_503_and_changes_nothing(failure, fake_votes, outbox) -> None:
    poll = PollFactory(owner_id=1, opened=True)
    _break(fake_votes, failure, poll, clients_name="_votes_client")
    before = _row(poll)
    with pytest.raises(ServiceUnavailable) as excinfo:
        services.poll_close(poll=poll, actor=OWNER)
    assert int(excinfo.value.headers["Retry-After"]) >= 1
    assert _row(poll) == before and outbox() == []


@pytest.mark.parametrize("failure", ["5xx", "unreachable"])
def test_operator_delete_when_vote_service_cannot_seal_is_503_and_changes_nothing(failure, fake_votes, outbox) -> None:
    poll = PollFactory(owner_id=1, closed=True)
    VoteReplicaFactory(poll_id=poll.id)
    _break(fake_votes, failure, poll, clients_name="_votes_client")
    before = _row(poll)
    with pytest.raises(ServiceUnavailable):
        services.poll_delete(poll=poll, actor=OPERATOR)
    assert _row(poll) == before and outbox() == [] and VoteReplica.objects.filter(poll_id=poll.id).exists()


def test_a_gate_answer_that_does_not_show_the_new_version_is_a_bad_gateway(fake_votes, outbox) -> None:
    from servicekit.http import UpstreamError

    poll = PollFactory(owner_id=1, opened=True)
    fake_votes.respond(fake_votes.state_path(poll), {"poll_id": str(poll.id), "version": 1, "status": "open"})
    with pytest.raises(UpstreamError):
        services.poll_close(poll=poll, actor=OWNER)
    assert Poll.objects.get(pk=poll.pk).status == "open" and outbox() == []


def test_close_expired_closes_only_open_polls_past_closes_at(outbox, fake_votes) -> None:
    now = timezone.now()
    due = PollFactory(opened=True, closes_at=now - timedelta(seconds=1))
    later = PollFactory(opened=True, closes_at=now + timedelta(hours=1))
    draft_past = PollFactory(closes_at=now - timedelta(seconds=1))
    no_deadline = PollFactory(opened=True)
    assert services.poll_close_expired(now=now) == 1
    states = {p.pk: Poll.objects.get(pk=p.pk).status for p in (due, later, draft_past, no_deadline)}
    assert states == {due.pk: "closed", later.pk: "open", draft_past.pk: "draft", no_deadline.pk: "open"}
    assert [(e["aggregate_id"], e["version"]) for e in outbox("poll.closed")] == [(str(due.id), due.version + 1)]
    assert [c["status"] for c in fake_votes.commands_for(due)] == ["closed"]
    assert len(fake_votes.commands) == 1
    assert services.poll_close_expired(now=now) == 0


def test_close_expired_skips_a_poll_vote_service_cannot_seal_and_closes_the_others(outbox, fake_votes) -> None:
    now = timezone.now()
    stuck = PollFactory(opened=True, closes_at=now - timedelta(seconds=2))
    due = PollFactory(opened=True, closes_at=now - timedelta(seconds=1))
    fake_votes.fail(fake_votes.state_path(stuck), status=503)
    assert services.poll_close_expired(now=now) == 1
    assert Poll.objects.get(pk=stuck.pk).status == "open" and Poll.objects.get(pk=stuck.pk).version == stuck.version
    assert Poll.objects.get(pk=due.pk).status == "closed"
    assert [e["aggregate_id"] for e in outbox("poll.closed")] == [str(due.id)]
    fake_votes.responses.clear()  # vote_service is back: the next run closes it
    assert services.poll_close_expired(now=now) == 1
    assert Poll.objects.get(pk=stuck.pk).status == "closed"


def test_status_outside_the_lifecycle_is_refused_by_the_database() -> None:
    poll = PollFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Poll.objects.filter(pk=poll.pk).update(status="gone")


def test_empty_question_is_refused_by_the_database() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        PollFactory(question="")


def test_poll_status_choices_are_the_lifecycle() -> None:
    assert PollStatus.values == ["draft", "open", "closed"]
