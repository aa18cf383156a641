"""``manage.py reconcile_tallies [--poll ID]``: repair the vote projection from vote_service's ledger now."""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError

from choices.services import tallies_reconcile, tallies_reconcile_all


class Command(BaseCommand):
    help = (
        "Make the per-vote projection (the source of every choice's votes) equal vote_service's ledger, "
        "vote id by vote id, reporting every repair. Safe while votes flow."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--poll", help="Only this poll (UUID); default: every open or closed poll.")

    def handle(self, *args, poll: str | None = None, **options) -> None:
        if poll:
            try:
                poll_id = uuid.UUID(poll)
            except ValueError as exc:
                raise CommandError(f"--poll must be a UUID, got {poll!r}") from exc
            reports = [tallies_reconcile(poll_id=poll_id)]
        else:
            reports = tallies_reconcile_all()
        repaired = 0
        for report in reports:
            if report.skipped:
                self.stdout.write(f"poll {report.poll_id}: skipped (ledger unavailable)")
                continue
            self.stdout.write(
                f"poll {report.poll_id}: {report.checked} vote(s) in the ledger, {report.inserted} inserted, "
                f"{report.updated} updated, {report.tombstoned} tombstoned"
            )
            repaired += report.repaired
        self.stdout.write(self.style.SUCCESS(f"{len(reports)} poll(s) checked, {repaired} vote(s) repaired"))
