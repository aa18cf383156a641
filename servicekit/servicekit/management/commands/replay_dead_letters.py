"""``manage.py replay_dead_letters [--id N ...] [--type T] [--drain-broker]``: retry dead-lettered events."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from servicekit.events.deadletters import drain_broker_dead_letters, replay_dead_letters


class Command(BaseCommand):
    help = "Send dead-lettered events back to this service's event queue (the inbox keeps it idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--id", type=int, action="append", dest="ids", help="only this dead letter (repeatable)")
        parser.add_argument("--type", dest="event_type", help="only events of this type")
        parser.add_argument(
            "--drain-broker", action="store_true", help="also remove the broker's copies from <service>.events.dlq"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count = replay_dead_letters(event_type=options["event_type"], ids=options["ids"])
        self.stdout.write(f"replayed {count} dead letter(s)")
        if options["drain_broker"]:
            drained = drain_broker_dead_letters()
            self.stdout.write(f"drained {drained} message(s) from the broker's dead-letter queue")
