"""Reconciliation of the per-vote projection against vote_service's ledger, vote id by vote id.

The ledger is a fake client (paging logic) in most tests and a real HTTP upstream in a few; events
racing the reconciliation are applied from inside the fake ledger's reads.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from prometheus_client import REGISTRY

from choices import services
from choices.models import VoteProjection
from choices.tests.factories import ChoiceFactory, PollReplicaFactory, tally
from servicekit.replicas import TOMBSTONE_VERSION

pytestmark = pytest.mark.django_db


def repairs_total() -> float:
    return REGISTRY.get_sample_value("choices_tally_repairs_total", {"service": "choices"}) or 0.0


class FakeLedger:
    """vote_service's ``GET /internal/polls/{id}/votes/?after=&limit=``: votes ordered by id, paged."""

    def __init__(self) -> None:
        self.polls: dict[str, dict[str, dict]] = {}
        self.calls: list[tuple[str, dict]] = []
        self.on_read: Callable[[int], None] | None = None  # runs before each page is read (racing events)

    def vote(self, poll_id, choice_id, *, vote_id=None, version=1) -> uuid.UUID:
        vote_id = vote_id or uuid.uuid4()
        self.polls.setdefault(str(poll_id), {})[str(vote_id)] = {
            "id": str(vote_id),
            "choice_id": str(choice_id),
            "version": version,
        }
        return vote_id

    def know(self, poll_id) -> None:
        """vote_service knows the poll (possibly with no vote)."""
        self.polls.setdefault(str(poll_id), {})

    def get_json(self, path: str, *, params: dict | None = None) -> dict | None:
        params = params or {}
        self.calls.append((path, dict(params)))
        if self.on_read is not None:
            self.on_read(len(self.calls))
        poll_id = path.removeprefix("/internal/polls/").removesuffix("/votes/")
        if poll_id not in self.polls:
            return None
        limit = int(params.get("limit", 1000))
        after = params.get("after")
        ordered = sorted(self.polls[poll_id].values(), key=lambda v: uuid.UUID(v["id"]))
        if after is not None:
            ordered = [v for v in ordered if uuid.UUID(v["id"]) > uuid.UUID(after)]
        page = ordered[:limit]
        more = len(ordered) > limit
        return {"poll_id": poll_id, "votes": page, "next": page[-1]["id"] if more else None}


@pytest.fixture
def ledger(monkeypatch) -> FakeLedger:
    fake = FakeLedger()
    monkeypatch.setattr(services, "votes_client", lambda: fake)
    return fake


@pytest.fixture
def poll():
    return PollReplicaFactory(status="open")


@pytest.fixture
def tea(poll):
    return ChoiceFactory(poll_id=poll.id, text="Tea")


@pytest.fixture
def coffee(poll):
    return ChoiceFactory(poll_id=poll.id, text="Coffee")


def project(poll, choice, *, vote_id=None, version=1, deleted=False) -> uuid.UUID:
    vote_id = vote_id or uuid.uuid4()
    services.vote_projection_apply(
        rows=[{"id": vote_id, "version": version, "poll_id": poll.id, "choice_id": choice.id, "deleted": deleted}]
    )
    return vote_id


def state(vote_id) -> tuple:
    return VoteProjection.objects.values_list("choice_id", "version", "deleted").get(pk=vote_id)


def test_repairs_missing_stale_and_retracted_votes(ledger, poll, tea, coffee, caplog):
    right = ledger.vote(poll.id, tea.id)
    project(poll, tea, vote_id=right)
    missing = ledger.vote(poll.id, coffee.id)  # its vote.cast was lost
    stale = ledger.vote(poll.id, coffee.id, version=2)  # its vote.changed was lost
    project(poll, tea, vote_id=stale, version=1)
    retracted = project(poll, tea)  # its vote.retracted was lost: the ledger no longer has it
    before = repairs_total()

    report = services.tallies_reconcile(poll_id=poll.id)

    assert (report.checked, report.inserted, report.updated, report.tombstoned) == (3, 1, 1, 1)
    assert report.repaired == 3 and not report.skipped
    assert state(right) == (tea.id, 1, False)
    assert state(missing) == (coffee.id, 1, False)
    assert state(stale) == (coffee.id, 2, False)
    assert state(retracted) == (tea.id, TOMBSTONE_VERSION, True)
    assert (tally(tea), tally(coffee)) == (1, 2)
    assert repairs_total() - before == 3
    assert [r for r in caplog.records if r.getMessage() == "votes repaired"]
    again = services.tallies_reconcile(poll_id=poll.id)
    assert again.repaired == 0 and repairs_total() - before == 3


def test_never_undoes_a_newer_event(ledger, poll, tea, coffee):
    changed = ledger.vote(poll.id, tea.id, version=1)
    project(poll, coffee, vote_id=changed, version=2)  # the ledger page is older than the event applied
    gone = ledger.vote(poll.id, tea.id, version=1)
    project(poll, tea, vote_id=gone, version=2, deleted=True)  # retraction applied already
    report = services.tallies_reconcile(poll_id=poll.id)
    assert report.repaired == 0
    assert state(changed) == (coffee.id, 2, False)
    assert state(gone) == (tea.id, 2, True)


def test_events_applied_while_the_ledger_is_read_are_kept(ledger, poll, tea, coffee):
    cast_meanwhile = uuid.uuid4()
    retracted_meanwhile = ledger.vote(poll.id, tea.id)
    project(poll, tea, vote_id=retracted_meanwhile)
    changed_meanwhile = ledger.vote(poll.id, tea.id)
    project(poll, tea, vote_id=changed_meanwhile)

    def events_in_flight(call: int) -> None:
        if call == 1:
            # Committed in vote_service after the ledger read below, its event applied before the repair.
            project(poll, coffee, vote_id=cast_meanwhile)
            # Retracted and its event applied, but the ledger page (read next) still lists it.
            project(poll, tea, vote_id=retracted_meanwhile, version=2, deleted=True)
            # Changed to coffee: event applied, the ledger page still shows the old state.
            project(poll, coffee, vote_id=changed_meanwhile, version=2)

    ledger.on_read = events_in_flight
    report = services.tallies_reconcile(poll_id=poll.id)
    assert report.repaired == 0
    assert state(cast_meanwhile) == (coffee.id, 1, False)  # not tombstoned: it was not in the first read
    assert state(retracted_meanwhile) == (tea.id, 2, True)
    assert state(changed_meanwhile) == (coffee.id, 2, False)
    assert (tally(tea), tally(coffee)) == (0, 2)


def test_a_tombstone_is_final(ledger, poll, tea):
    ledger.know(poll.id)
    retracted = project(poll, tea)
    services.tallies_reconcile(poll_id=poll.id)
    assert state(retracted) == (tea.id, TOMBSTONE_VERSION, True)
    project(poll, tea, vote_id=retracted, version=1)  # the cast redelivered late
    project(poll, tea, vote_id=retracted, version=5)
    assert state(retracted)[2] is True and tally(tea) == 0


def test_reads_every_ledger_page(ledger, poll, tea, coffee):
    votes = [ledger.vote(poll.id, tea.id if i % 3 else coffee.id) for i in range(2_345)]
    report = services.tallies_reconcile(poll_id=poll.id)
    assert (report.checked, report.inserted) == (2_345, 2_345)
    assert VoteProjection.objects.filter(poll_id=poll.id, deleted=False).count() == len(votes)
    assert tally(coffee) == len([i for i in range(2_345) if i % 3 == 0])
    pages = [params for path, params in ledger.calls]
    assert pages[0] == {"limit": 1000}
    assert [p.get("after") for p in pages[1:]] == [
        str(sorted(votes)[999]),
        str(sorted(votes)[1999]),
    ]
    assert all(path == f"/internal/polls/{poll.id}/votes/" for path, _ in ledger.calls)


def test_a_ledger_that_does_not_advance_is_an_error_and_changes_nothing(ledger, poll, tea, monkeypatch):
    retracted = project(poll, tea)
    stuck = {"poll_id": str(poll.id), "votes": [], "next": str(uuid.uuid4())}
    monkeypatch.setattr(ledger, "get_json", lambda path, params=None: stuck)
    with pytest.raises(services.LedgerError):
        services.tallies_reconcile(poll_id=poll.id)
    assert state(retracted) == (tea.id, 1, False)


def test_a_poll_unknown_to_the_ledger_is_skipped(ledger, poll, tea):
    vote_id = project(poll, tea)
    report = services.tallies_reconcile(poll_id=poll.id)
    assert report.skipped
    assert state(vote_id) == (tea.id, 1, False)


def test_a_vote_for_a_choice_unknown_here_is_repaired_too(ledger, poll):
    ghost_choice = uuid.uuid4()
    vote_id = ledger.vote(poll.id, ghost_choice)
    assert services.tallies_reconcile(poll_id=poll.id).inserted == 1
    assert state(vote_id) == (ghost_choice, 1, False)


def test_reconcile_all_covers_open_and_closed_polls_and_survives_failures(ledger, monkeypatch):
    ok = PollReplicaFactory(status="closed")
    choice = ChoiceFactory(poll_id=ok.id)
    for _ in range(4):
        ledger.vote(ok.id, choice.id)
    failing = PollReplicaFactory(status="open")
    draft = PollReplicaFactory(status="draft")
    deleted = PollReplicaFactory(status="deleted")
    leftover = project(deleted, ChoiceFactory.build(poll_id=deleted.id))  # a vote event after the deletion
    read = ledger.get_json

    def get_json(path, *, params=None):
        if str(failing.id) in path:
            raise RuntimeError("vote_service down")
        return read(path, params=params)

    monkeypatch.setattr(ledger, "get_json", get_json)
    reports = {r.poll_id: r for r in services.tallies_reconcile_all()}
    assert set(reports) == {str(ok.id), str(failing.id)}
    assert reports[str(failing.id)].skipped and not reports[str(ok.id)].skipped
    assert str(draft.id) not in reports
    assert tally(choice) == 4
    assert not VoteProjection.objects.filter(pk=leftover).exists()


def test_over_http_with_the_service_credential(fake_votes, poll, tea):
    vote_id = uuid.uuid4()
    retracted = project(poll, tea)
    fake_votes.respond(
        f"/internal/polls/{poll.id}/votes/",
        {
            "poll_id": str(poll.id),
            "votes": [{"id": str(vote_id), "choice_id": str(tea.id), "version": 1}],
            "next": None,
        },
    )
    report = services.tallies_reconcile(poll_id=poll.id)
    assert (report.inserted, report.tombstoned) == (1, 1)
    assert tally(tea) == 1 and state(retracted)[2] is True
    assert fake_votes.requests[0].authorization.startswith("Service ")


def test_over_http_an_unknown_poll_is_skipped_and_a_failure_raises(fake_votes, poll, tea):
    project(poll, tea)
    assert services.tallies_reconcile(poll_id=poll.id).skipped
    fake_votes.fail(f"/internal/polls/{poll.id}/votes/", status=500)
    reports = services.tallies_reconcile_all()
    assert [(r.poll_id, r.skipped) for r in reports] == [(str(poll.id), True)]
    assert tally(tea) == 1


def test_management_command_reports_repairs(ledger, poll, tea):
    ledger.vote(poll.id, tea.id)
    project(poll, tea)
    out = io.StringIO()
    call_command("reconcile_tallies", "--poll", str(poll.id), stdout=out)
    text = out.getvalue()
    assert f"poll {poll.id}: 1 vote(s) in the ledger, 1 inserted, 0 updated, 1 tombstoned" in text
    assert "1 poll(s) checked, 2 vote(s) repaired" in text


def test_management_command_reports_skipped_polls(ledger, poll):
    out = io.StringIO()
    call_command("reconcile_tallies", stdout=out)
    assert f"poll {poll.id}: skipped (ledger unavailable)" in out.getvalue()


def test_management_command_rejects_bad_poll_id():
    with pytest.raises(CommandError):
        call_command("reconcile_tallies", "--poll", "nope")


def test_the_task_reconciles_one_poll_or_all(ledger, poll, tea):
    from choices import tasks

    ledger.vote(poll.id, tea.id)
    ledger.vote(poll.id, tea.id)
    assert tasks.reconcile_tallies(str(poll.id)) == 2
    assert tasks.reconcile_tallies(str(poll.id)) == 0
    assert tasks.reconcile_tallies(str(uuid.uuid4())) == 0
    assert tasks.reconcile_tallies() == 0


def test_the_beat_entry_repairs_through_run_when_idle(ledger, poll, tea, settings, monkeypatch):
    # What celery beat sends: the schedule entry's task with its kwargs, run the way a worker runs it.
    from celery import current_app

    import choices.tasks  # noqa: F401 - registers choices.reconcile_tallies
    from servicekit.events import tasks as event_tasks

    entry = settings.CELERY_BEAT_SCHEDULE["choices-reconcile-tallies"]
    assert entry["task"] == "servicekit.events.run_when_idle"
    beat = current_app.tasks[entry["task"]]
    missing = ledger.vote(poll.id, tea.id)  # its vote.cast was lost
    before = repairs_total()

    monkeypatch.setattr(event_tasks, "events_backlog", lambda service=None: 3)  # events still queued
    assert beat.apply(kwargs=entry["kwargs"]).get() is False
    assert not VoteProjection.objects.filter(pk=missing).exists()

    monkeypatch.setattr(event_tasks, "events_backlog", lambda service=None: 0)  # a quiet moment
    assert beat.apply(kwargs=entry["kwargs"]).get() is True
    assert state(missing) == (tea.id, 1, False)
    assert tally(tea) == 1 and repairs_total() - before == 1
