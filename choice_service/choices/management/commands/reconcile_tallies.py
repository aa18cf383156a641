"""``manage.py reconcile_tallies [--poll ID] [--settle SECONDS]``: recount tallies from the vote ledger now."""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError

from choices.services import tallies_reconcile, tallies_reconcile_all


class Command(BaseCommand):
    help = "Make choice vote tallies equal vote_service's ledger counts, reporting every repair."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--poll", help="Only this poll (UUID); default: every open or closed poll.")
        parser.add_argument(
            "--settle",
            type=float,
            default=0.0,
            help="Seconds between two readings; only drift seen in both is repaired (use while votes flow).",
        )

    def handle(self, *args, poll: str | None = None, settle: float = 0.0, **options) -> None:
        if poll:
            try:
                poll_id = uuid.UUID(poll)
            except ValueError as exc:
                raise CommandError(f"--poll must be a UUID, got {poll!r}") from exc
            reports = [tallies_reconcile(poll_id=poll_id, settle_seconds=settle)]
        else:
            reports = tallies_reconcile_all(settle_seconds=settle)
        repaired = 0
        for report in reports:
            if report.skipped:
                self.stdout.write(f"poll {report.poll_id}: skipped (ledger unavailable)")
                continue
            for choice_id, (was, now) in report.repaired.items():
                self.stdout.write(f"poll {report.poll_id}: choice {choice_id} tally {was} -> {now}")
            repaired += len(report.repaired)
        self.stdout.write(self.style.SUCCESS(f"{len(reports)} poll(s) checked, {repaired} tally(ies) repaired"))
