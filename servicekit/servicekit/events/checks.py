"""System checks: every handler's event type must route to this service's queue.

A handler registered with ``@handles("x")`` never runs unless ``contracts/events/registry.json`` lists
this service among the consumers of ``x`` (that is what binds its queue): ``servicekit.E001`` says so
at start-up instead of events silently never arriving.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks

from servicekit.conf import servicekit_settings
from servicekit.events.inbox import registered_types
from servicekit.events.registry import get_registry


@checks.register("servicekit")
def check_handler_bindings(
    *, app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    registry = get_registry()
    service = servicekit_settings.SERVICE_NAME
    errors: list[checks.CheckMessage] = []
    for event_type in registered_types():
        if service not in registry.get(event_type).consumers:
            errors.append(
                checks.Error(
                    f"A handler of {event_type!r} is registered but {service!r} is not among its consumers "
                    "in contracts/events/registry.json, so its queue is not bound to that type.",
                    hint=f"Add {service!r} to events[{event_type!r}].consumers (registry changes are additive).",
                    id="servicekit.E001",
                )
            )
    return errors
