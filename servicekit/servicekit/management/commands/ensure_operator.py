"""``manage.py ensure_operator``: create or update the operator account of this service.

``make up`` runs it for every service so each Django admin has the same operator. The account is
staff and superuser; in polls_service staff users get the ``operator`` role in their tokens::

    OPERATOR_USERNAME=ops OPERATOR_PASSWORD='s3cret...' python manage.py ensure_operator

Development defaults are ``operator`` / ``operator-dev-password``; with ``DJANGO_ENV=production``
an explicit, validated password is required.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from servicekit.env import env

DEFAULT_USERNAME = "operator"
DEFAULT_PASSWORD = "operator-dev-password"


class Command(BaseCommand):
    help = "Create or update the operator (staff superuser) from OPERATOR_USERNAME / OPERATOR_PASSWORD."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", help="Overrides OPERATOR_USERNAME.")
        parser.add_argument("--password", help="Overrides OPERATOR_PASSWORD.")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options.get("username") or env.str("OPERATOR_USERNAME", default=DEFAULT_USERNAME)
        password = options.get("password") or env.str("OPERATOR_PASSWORD", default=DEFAULT_PASSWORD)
        production = env.str("DJANGO_ENV", default="development") == "production"
        if production:
            if password == DEFAULT_PASSWORD:
                raise CommandError("Set OPERATOR_PASSWORD: the development default is refused in production.")
            try:
                password_validation.validate_password(password)
            except ValidationError as exc:
                raise CommandError("OPERATOR_PASSWORD is too weak: " + " ".join(exc.messages)) from exc

        User = get_user_model()
        with transaction.atomic():
            user = User.objects.select_for_update().filter(username__iexact=username).first()
            created = user is None
            if user is None:
                user = User(username=username)
            changed = created or not (user.is_staff and user.is_superuser and user.is_active)
            user.is_staff = user.is_superuser = user.is_active = True
            if created or not user.check_password(password):
                user.set_password(password)
                changed = True
            if changed:
                user.save()
        verb = "created" if created else ("updated" if changed else "unchanged")
        self.stdout.write(f"operator {user.get_username()!r} {verb}")
