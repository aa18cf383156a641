"""The ``servicekit`` Django app: its models (event outbox/inbox/dead letters), admin, commands and tasks.

On start-up it imports every installed app's ``events.py`` so ``@handles`` handlers register, and
registers the system checks of the event machinery.
"""

from django.apps import AppConfig


class ServiceKitConfig(AppConfig):
    name = "servicekit"
    verbose_name = "Service kit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from servicekit import audit
        from servicekit.events import checks  # noqa: F401 - registers the checks

        autodiscover_modules("events")
        audit.connect_signals()  # admin actions and role changes go to the audit trail
