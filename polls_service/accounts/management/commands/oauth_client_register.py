"""``manage.py oauth_client_register <client_id> <name> --scope results:read``: a new machine client.

Prints the client's secret once (only its hash is stored); the client then asks ``/oauth/token/`` with
``grant_type=client_credentials``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from accounts import services
from accounts.models import SCOPES


class Command(BaseCommand):
    help = "Register an OAuth 2.0 machine client (client_credentials) and print its secret once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("client_id")
        parser.add_argument("name")
        parser.add_argument("--scope", action="append", required=True, choices=sorted(SCOPES))

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            client, secret = services.oauth_client_register(
                client_id=options["client_id"], name=options["name"], scopes=options["scope"]
            )
        except IntegrityError as exc:
            raise CommandError(f"client {options['client_id']!r} exists already") from exc
        self.stdout.write(f"client_id={client.client_id}\nclient_secret={secret}\nscope={client.scopes}")
