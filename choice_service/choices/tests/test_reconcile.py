"""Tally reconciliation against vote_service's ledger counts (a real HTTP upstream)."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from prometheus_client import REGISTRY

from choices import services
from choices.tests.factories import ChoiceFactory, PollReplicaFactory

pytestmark = pytest.mark.django_db


def repairs_total() -> float:
    return REGISTRY.get_sample_value("choices_tally_repairs_total", {"service": "choices"}) or 0.0


@pytest.fixture
def drifted(fake_votes):
    poll = PollReplicaFactory(status="open")
    right = ChoiceFactory(poll_id=poll.id, votes=3)
    too_high = ChoiceFactory(poll_id=poll.id, votes=9)
    too_low = ChoiceFactory(poll_id=poll.id, votes=0)
    fake_votes.respond(
        f"/internal/polls/{poll.id}/counts/",
        {"poll_id": str(poll.id), "counts": {str(right.id): 3, str(too_high.id): 4, str(too_low.id): 2}},
    )
    return poll, right, too_high, too_low


def test_reconcile_repairs_drift_logs_and_counts_each_repair(drifted, caplog):
    poll, right, too_high, too_low = drifted
    before = repairs_total()
    report = services.tallies_reconcile(poll_id=poll.id)
    assert report.checked == 3
    assert report.repaired == {str(too_high.id): (9, 4), str(too_low.id): (0, 2)}
    for choice, expected in ((right, 3), (too_high, 4), (too_low, 2)):
        choice.refresh_from_db()
        assert choice.votes == expected
    assert repairs_total() - before == 2
    assert sum(1 for r in caplog.records if r.getMessage() == "tally repaired") == 2
    assert services.tallies_reconcile(poll_id=poll.id).repaired == {}


def test_choice_missing_from_the_ledger_counts_zero(fake_votes):
    poll = PollReplicaFactory(status="closed")
    choice = ChoiceFactory(poll_id=poll.id, votes=2)
    fake_votes.respond(f"/internal/polls/{poll.id}/counts/", {"poll_id": str(poll.id), "counts": {}})
    services.tallies_reconcile(poll_id=poll.id)
    choice.refresh_from_db()
    assert choice.votes == 0


def test_drift_that_is_still_moving_is_left_for_the_next_run(drifted):
    poll, right, too_high, too_low = drifted
    earlier = services.Observation(
        counts={str(right.id): 3, str(too_high.id): 3, str(too_low.id): 2},  # the ledger moved since
        tallies={str(right.id): 3, str(too_high.id): 9, str(too_low.id): 0},
    )
    report = services.tallies_reconcile(poll_id=poll.id, earlier=earlier)
    assert report.repaired == {str(too_low.id): (0, 2)}
    too_high.refresh_from_db()
    assert too_high.votes == 9


def test_settle_reads_twice_and_repairs_stable_drift(drifted):
    poll, _, too_high, _ = drifted
    report = services.tallies_reconcile(poll_id=poll.id, settle_seconds=0.01)
    assert str(too_high.id) in report.repaired


def test_unknown_poll_at_the_ledger_is_skipped(fake_votes):
    poll = PollReplicaFactory(status="open")
    choice = ChoiceFactory(poll_id=poll.id, votes=5)
    assert services.tallies_reconcile(poll_id=poll.id).skipped
    choice.refresh_from_db()
    assert choice.votes == 5


def test_reconcile_all_covers_open_and_closed_polls_and_survives_failures(fake_votes):
    ok = PollReplicaFactory(status="closed")
    choice = ChoiceFactory(poll_id=ok.id, votes=1)
    fake_votes.respond(f"/internal/polls/{ok.id}/counts/", {"poll_id": str(ok.id), "counts": {str(choice.id): 4}})
    failing = PollReplicaFactory(status="open")
    fake_votes.fail(f"/internal/polls/{failing.id}/counts/", status=500)
    draft = PollReplicaFactory(status="draft")
    reports = {r.poll_id: r for r in services.tallies_reconcile_all()}
    assert set(reports) == {str(ok.id), str(failing.id)}
    assert reports[str(failing.id)].skipped and not reports[str(ok.id)].skipped
    assert str(draft.id) not in reports
    choice.refresh_from_db()
    assert choice.votes == 4


def test_management_command_reports_repairs(drifted):
    poll, _, too_high, too_low = drifted
    out = io.StringIO()
    call_command("reconcile_tallies", "--poll", str(poll.id), stdout=out)
    text = out.getvalue()
    assert f"choice {too_high.id} tally 9 -> 4" in text
    assert f"choice {too_low.id} tally 0 -> 2" in text
    assert "2 tally(ies) repaired" in text


def test_management_command_rejects_bad_poll_id():
    with pytest.raises(CommandError):
        call_command("reconcile_tallies", "--poll", "nope")


def test_beat_task_reconciles(drifted, monkeypatch):
    from choices import tasks

    monkeypatch.setattr(tasks, "RECONCILE_SETTLE_SECONDS", 0.01)
    poll, *_ = drifted
    assert tasks.reconcile_tallies(str(poll.id)) == 2
    assert tasks.reconcile_tallies(str(uuid.uuid4())) == 0
