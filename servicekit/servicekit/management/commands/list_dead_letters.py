"""``manage.py list_dead_letters [--all]``: the events this service's handlers gave up on."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from servicekit.events.models import DeadLetter


class Command(BaseCommand):
    help = "List dead-lettered events of this service (not yet replayed, or --all)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="include replayed ones")

    def handle(self, *args: Any, **options: Any) -> None:
        qs = DeadLetter.objects.order_by("id")
        if not options["all"]:
            qs = qs.filter(replayed_at__isnull=True)
        count = 0
        for letter in qs:
            count += 1
            state = f"replayed {letter.replayed_at:%Y-%m-%d %H:%M:%S}" if letter.replayed_at else "dead"
            self.stdout.write(
                f"{letter.id}\t{letter.created_at:%Y-%m-%d %H:%M:%S}\t{letter.event_type}\t"
                f"{letter.event_id}\tattempts={letter.attempts}\t{state}\t{letter.error[:200]}"
            )
        self.stdout.write(f"{count} dead letter(s)")
