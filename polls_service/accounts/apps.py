from typing import Any

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # However a user is saved (the API, the admin, a shell), a new password, fewer roles or a
        # deactivation ends its sessions everywhere (accounts.services.user_saved).
        from django.conf import settings
        from django.db.models.signals import post_save, pre_save

        pre_save.connect(_remember_state, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.sessions_pre")
        post_save.connect(_state_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.sessions_post")


def _remember_state(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    from accounts import services

    stored = None if raw or instance.pk is None else sender._default_manager.filter(pk=instance.pk).first()
    instance._sessions_state_before = services.user_state(stored) if stored is not None else None


def _state_saved(sender: Any, instance: Any, created: bool = False, raw: bool = False, **kwargs: Any) -> None:
    from accounts import services

    if not created and not raw:
        services.user_saved(user=instance, before=getattr(instance, "_sessions_state_before", None))
