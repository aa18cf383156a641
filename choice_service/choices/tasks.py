"""Celery tasks of choice_service: they take ids and call services."""

from __future__ import annotations

from celery import shared_task

from choices.services import tallies_reconcile, tallies_reconcile_all


@shared_task(name="choices.reconcile_tallies", ignore_result=True)
def reconcile_tallies(poll_id: str | None = None) -> int:
    """Periodic (beat) or on-demand reconciliation of the vote projection against vote_service's ledger;
    safe at any moment (set-wise, by version). Returns how many votes were repaired."""
    reports = [tallies_reconcile(poll_id=poll_id)] if poll_id else tallies_reconcile_all()
    return sum(report.repaired for report in reports)
