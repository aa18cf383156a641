"""Gates and versions: what happens when polls_service's own COMMIT fails after a gate moved, and the
version every change gives a poll. These tests commit for real (``transaction=True``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from django.db import OperationalError, connections

from polls import clients, services
from polls.models import Poll
from polls.tests.factories import PollFactory, VoteReplicaFactory
from servicekit.principal import Principal

pytestmark = pytest.mark.django_db(transaction=True)

OWNER = Principal(id=1, username="olivia")
OPERATOR = Principal(id=99, username="opal", roles=frozenset({"user", "operator"}))


class Commits:
    """The default connection's real COMMITs, made to fail on demand once a gate has answered."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.monkeypatch = monkeypatch
        self.failing = 0
        self.lost_answer = False
        connection = connections["default"]
        real = connection.commit

        def commit() -> None:
            if self.failing:
                self.failing -= 1
                if self.lost_answer:  # the COMMIT happened, but its answer never reached us
                    real()
                raise OperationalError("simulated: the commit failed")
            real()

        monkeypatch.setattr(connection, "commit", commit)

    def fail_after(self, gate: str, *, times: int = 1, then: Callable[[], Any] | None = None) -> None:
        """After the first call of ``clients.<gate>`` returned, fail the next ``times`` commits."""
        real = getattr(clients, gate)
        armed: list[bool] = []

        def gated(poll: Poll, **kwargs: Any) -> Any:
            answer = real(poll, **kwargs)
            if not armed:
                armed.append(True)
                self.failing = times
                if then:
                    then()
            return answer

        self.monkeypatch.setattr(clients, gate, gated)


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> Commits:
    return Commits(monkeypatch)


def _command(poll: Poll, version: int, status: str) -> dict[str, Any]:
    return {"version": version, "owner_id": poll.owner_id, "status": status, "closes_at": None}


def test_a_failed_commit_after_the_seal_moves_the_gate_back_at_old_plus_two(commits, fake_votes, outbox) -> None:
    poll = PollFactory(owner_id=1, opened=True)
    old = poll.version
    commits.fail_after("votes_gate")
    with pytest.raises(OperationalError):
        services.poll_close(poll=poll, actor=OWNER)
    after = Poll.objects.get(pk=poll.pk)
    assert (after.status, after.version, after.closed_at) == ("open", old + 2, None)  # state unchanged
    assert outbox("poll.closed") == []
    (event,) = outbox("poll.updated")
    assert (event["version"], event["data"]["status"]) == (old + 2, "open")
    assert fake_votes.commands_for(poll) == [_command(poll, old + 1, "closed"), _command(poll, old + 2, "open")]
    assert fake_votes.held[str(poll.id)] == _command(poll, old + 2, "open")  # votes are taken again
    closed = services.poll_close(poll=after, actor=OWNER)  # and the poll closes normally afterwards
    assert closed.version == old + 3 and fake_votes.held[str(poll.id)] == _command(poll, old + 3, "closed")


def test_a_failed_commit_after_the_freeze_moves_the_gate_back(commits, with_choices, fake_choices, outbox) -> None:
    poll = PollFactory(owner_id=1)
    with_choices(poll, 2)
    commits.fail_after("choices_gate")
    with pytest.raises(OperationalError):
        services.poll_open(poll=poll, actor=OWNER)
    after = Poll.objects.get(pk=poll.pk)
    assert (after.status, after.version, after.opened_at) == ("draft", 3, None)
    assert outbox("poll.opened") == [] and [e["version"] for e in outbox("poll.updated")] == [3]
    assert fake_choices.commands_for(poll) == [
        {**_command(poll, 2, "open"), "min_choices": 2},
        _command(poll, 3, "draft"),  # choices may be edited again
    ]
    assert fake_choices.held[str(poll.id)]["status"] == "draft"


def test_a_failed_commit_of_an_operator_delete_moves_the_seal_back(commits, fake_votes, outbox) -> None:
    poll = PollFactory(owner_id=1, closed=True)
    VoteReplicaFactory(poll_id=poll.id)
    old = poll.version
    commits.fail_after("votes_gate")
    with pytest.raises(OperationalError):
        services.poll_delete(poll=poll, actor=OPERATOR)
    assert Poll.objects.get(pk=poll.pk).version == old + 2
    assert outbox("poll.deleted") == [] and [e["version"] for e in outbox("poll.updated")] == [old + 2]
    assert [c["status"] for c in fake_votes.commands_for(poll)] == ["deleted", "closed"]


def test_when_the_gate_cannot_be_moved_back_it_stays_sealed(commits, fake_votes, outbox, caplog) -> None:
    poll = PollFactory(owner_id=1, opened=True)
    old = poll.version
    commits.fail_after("votes_gate", then=lambda: fake_votes.fail(fake_votes.state_path(poll), status=503))
    with caplog.at_level(logging.ERROR, logger="polls.services"), pytest.raises(OperationalError):
        services.poll_close(poll=poll, actor=OWNER)
    after = Poll.objects.get(pk=poll.pk)
    assert (after.status, after.version) == ("open", old + 2)
    assert [e["version"] for e in outbox("poll.updated")] == [old + 2]
    assert fake_votes.held[str(poll.id)] == _command(poll, old + 1, "closed")  # the safe direction
    assert any("compensation" in record.getMessage() for record in caplog.records)
    fake_votes.responses.clear()
    assert services.poll_close(poll=after, actor=OWNER).version == old + 3  # a later close still works


def test_when_the_database_stays_down_the_gate_stays_sealed_and_a_retry_closes(commits, fake_votes, outbox) -> None:
    poll = PollFactory(owner_id=1, opened=True)
    old = poll.version
    commits.fail_after("votes_gate", times=2)  # the compensation's commit fails too
    with pytest.raises(OperationalError):
        services.poll_close(poll=poll, actor=OWNER)
    after = Poll.objects.get(pk=poll.pk)
    assert (after.status, after.version) == ("open", old) and outbox() == []
    assert fake_votes.held[str(poll.id)] == _command(poll, old + 1, "closed")
    closed = services.poll_close(poll=after, actor=OWNER)  # same version again: the gate already holds it
    assert (closed.status, closed.version) == ("closed", old + 1)
    assert [e["version"] for e in outbox("poll.closed")] == [old + 1]


def test_a_commit_that_happened_although_it_reported_failure_is_not_compensated(commits, fake_votes, outbox) -> None:
    poll = PollFactory(owner_id=1, opened=True)
    old = poll.version
    commits.lost_answer = True
    commits.fail_after("votes_gate")
    with pytest.raises(OperationalError):
        services.poll_close(poll=poll, actor=OWNER)
    after = Poll.objects.get(pk=poll.pk)
    assert (after.status, after.version) == ("closed", old + 1)  # re-read: it committed
    assert outbox("poll.updated") == [] and len(fake_votes.commands_for(poll)) == 1


def test_every_change_increments_the_version_and_its_event_carries_it(with_choices, fake_votes, outbox) -> None:
    poll = services.poll_create(actor=OWNER, question="Versions?")
    poll = services.poll_update(poll=poll, actor=OWNER, data={"description": "first"})
    poll = services.poll_update(poll=poll, actor=OWNER, data={"question": "Versions, really?"})
    with_choices(poll, 2)
    poll = services.poll_open(poll=poll, actor=OWNER)
    poll = services.poll_close(poll=poll, actor=OWNER)
    services.poll_delete(poll=poll, actor=OPERATOR)
    assert [(e["type"], e["version"]) for e in outbox()] == [
        ("poll.created", 1),
        ("poll.updated", 2),
        ("poll.updated", 3),
        ("poll.opened", 4),
        ("poll.closed", 5),
        ("poll.deleted", 6),
    ]
    assert [(c["status"], c["version"]) for c in fake_votes.commands_for(poll)] == [("closed", 5), ("deleted", 6)]
