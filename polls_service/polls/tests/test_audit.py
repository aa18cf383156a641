"""Operators' poll state changes are audited; a burst of 403s (object enumeration) blocks the user for a while."""

from __future__ import annotations

import random

import pytest
from prometheus_client import REGISTRY

from polls.tests.conftest import make_caller
from polls.tests.factories import PollFactory
from servicekit import detection
from servicekit.models import AuditEntry

pytestmark = pytest.mark.django_db


def _threats(kind: str) -> float:
    return REGISTRY.get_sample_value("security_threats_detected_total", {"service": "polls", "kind": kind}) or 0


def test_an_operator_closing_and_deleting_a_poll_is_audited(operator, owner) -> None:
    opened = PollFactory(owner_id=owner.id, opened=True)
    assert operator.post(f"/api/v1/polls/{opened.id}/close/").status_code == 200
    assert operator.delete(f"/api/v1/polls/{opened.id}/").status_code == 204
    changes = AuditEntry.objects.filter(event="poll.state_changed", detail__poll=str(opened.id)).order_by("id")
    assert [(e.detail["from"], e.detail["to"], e.actor_username) for e in changes] == [
        ("open", "closed", "opal"),
        ("closed", "deleted", "opal"),
    ]
    assert all(e.request_id for e in changes)


def test_an_owner_closing_their_own_poll_is_not_an_operator_action(owner) -> None:
    opened = PollFactory(owner_id=owner.id, opened=True)
    assert owner.post(f"/api/v1/polls/{opened.id}/close/").status_code == 200
    assert not AuditEntry.objects.filter(event="poll.state_changed").exists()


@pytest.fixture
def prober(settings):
    """A user of their own (the suite's fixed ids are shared by concurrent runs); their block lifted after."""
    settings.SERVICEKIT = {**settings.SERVICEKIT, "DETECT_FORBIDDEN_BURST": "3/1m"}
    caller = make_caller(random.randrange(10**6, 10**9), "prober")
    yield caller
    detection.unblock(detection.FORBIDDEN_BURST, str(caller.id))


def test_a_burst_of_403s_blocks_that_user_on_this_service(owner, prober) -> None:
    other = prober
    polls = [PollFactory(owner_id=owner.id, opened=True) for _ in range(3)]
    before = _threats("forbidden_burst")
    statuses = [other.post(f"/api/v1/polls/{poll.id}/close/").status_code for poll in polls]
    assert statuses == [403, 403, 403]
    denied = AuditEntry.objects.filter(event="access.denied", actor_id=str(other.id))
    assert denied.count() == 3 and denied.first().outcome == "denied"
    # Blocked now, even for a read anyone may make; the owner is not.
    blocked = other.get("/api/v1/polls/")
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) > 60
    assert blocked["Content-Type"] == "application/problem+json"
    assert owner.get("/api/v1/polls/").status_code == 200
    assert _threats("forbidden_burst") == before + 1
    (threat,) = AuditEntry.objects.filter(event="threat.forbidden_burst", actor_id=str(other.id))
    assert threat.actor_id == str(other.id) and threat.detail["denials"] == 3


def test_a_few_403s_do_not_block(prober, owner) -> None:
    other = prober
    poll = PollFactory(owner_id=owner.id, opened=True)
    assert other.post(f"/api/v1/polls/{poll.id}/close/").status_code == 403
    assert other.get("/api/v1/polls/").status_code == 200
