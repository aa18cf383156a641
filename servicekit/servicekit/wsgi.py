"""The WSGI application of a service, as each web worker process loads it::

    # <service>_service/wsgi.py
    from servicekit.wsgi import service_application
    application = service_application("vote_service.settings")

The server (``servicekit.server``, granian) imports ``<service>.wsgi:application`` in every worker
process after it has started, so this is where per-process set-up happens: tracing
(``servicekit.tracing.setup``, a no-op unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set) is installed
before Django loads its middleware, because the Django instrumentation inserts its own.
"""

from __future__ import annotations

import os
from typing import Any


def service_application(settings_module: str) -> Any:
    """Django's WSGI handler for ``settings_module``, with this process's tracing set up first."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application

    from servicekit import tracing

    settings.SERVICEKIT  # noqa: B018 - load the settings (and .env) before tracing reads OTEL_*
    tracing.setup(process="web")
    return get_wsgi_application()
