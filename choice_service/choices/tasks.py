"""Celery tasks of choice_service: they take ids and call services."""

from __future__ import annotations

from celery import shared_task

from choices.services import tallies_reconcile, tallies_reconcile_all

# Readings this far apart must agree before a tally is repaired (events in flight are not drift).
RECONCILE_SETTLE_SECONDS = 2.0


@shared_task(name="choices.reconcile_tallies", ignore_result=True)
def reconcile_tallies(poll_id: str | None = None) -> int:
    """Periodic (beat) or on-demand reconciliation; returns how many tallies were repaired."""
    if poll_id:
        reports = [tallies_reconcile(poll_id=poll_id, settle_seconds=RECONCILE_SETTLE_SECONDS)]
    else:
        reports = tallies_reconcile_all(settle_seconds=RECONCILE_SETTLE_SECONDS)
    return sum(len(report.repaired) for report in reports)
