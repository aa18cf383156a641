"""``manage.py relay_outbox [--loop]``: publish pending outbox events now (or keep relaying)."""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from servicekit.events.models import OutboxEvent
from servicekit.events.relay import relay_pending


class Command(BaseCommand):
    help = "Publish pending outbox events to the broker (the relay, by hand)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="keep relaying every --interval seconds")
        parser.add_argument("--interval", type=float, default=0.5)

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            try:
                count = relay_pending()
                pending = OutboxEvent.objects.filter(sent_at__isnull=True).count()
                self.stdout.write(f"published {count}; pending {pending}")
            except Exception as exc:  # broker down: say so and (in --loop) try again
                self.stderr.write(f"relay failed: {exc!r}")
                if not options["loop"]:
                    raise SystemExit(1) from exc
            if not options["loop"]:
                return
            time.sleep(options["interval"])
