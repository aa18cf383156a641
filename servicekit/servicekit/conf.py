"""The ``SERVICEKIT`` settings dict, resolved against defaults the way DRF resolves ``REST_FRAMEWORK``.

A service names itself and overrides only what differs::

    # polls_service/polls_service/settings.py
    SERVICEKIT = {"SERVICE_NAME": "polls"}

and servicekit code reads the resolved value::

    from servicekit.conf import servicekit_settings
    servicekit_settings.SERVICE_NAME

Unknown keys raise ``AttributeError`` so a typo fails loudly instead of silently using a default.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # Short name of the running service ("polls", "choices", "votes"); appears in logs and metrics.
    "SERVICE_NAME": "service",
    # Readiness checks run by /readyz, in order. Each is a name from servicekit.health.CHECKS.
    "READINESS_CHECKS": ("database", "cache", "broker"),
    # Seconds a single readiness check may take before it counts as failed.
    "READINESS_TIMEOUT": 2.0,
    # Largest accepted request body in bytes (the gateway enforces the same limit).
    "MAX_BODY_BYTES": 64 * 1024,
}


class ServiceKitSettings:
    """Attribute access to ``settings.SERVICEKIT`` with defaults filled in; cached until settings change."""

    def __init__(self, defaults: dict[str, Any]):
        self._defaults = defaults
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._defaults:
            raise AttributeError(f"Invalid servicekit setting: {name!r}")
        if name not in self._cache:
            user = getattr(settings, "SERVICEKIT", {})
            self._cache[name] = user.get(name, self._defaults[name])
        return self._cache[name]

    def register_defaults(self, defaults: dict[str, Any]) -> None:
        """Let a servicekit module add its own defaults (``auth``, ``events``) without editing this one."""
        for key, value in defaults.items():
            self._defaults.setdefault(key, value)

    def reload(self) -> None:
        self._cache.clear()


servicekit_settings = ServiceKitSettings(DEFAULTS)


def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "SERVICEKIT":
        servicekit_settings.reload()


setting_changed.connect(_reload_on_change)
