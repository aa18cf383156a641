"""The WSGI application of a service, as each web worker process loads it::

    # <service>_service/wsgi.py
    from servicekit.wsgi import service_application
    application = service_application("vote_service.settings")

The server (``servicekit.server``, granian) imports ``<service>.wsgi:application`` in every worker
process after it has started, so this is where per-process set-up happens: tracing
(``servicekit.tracing.setup``, a no-op unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set) is installed
before Django loads its middleware, because the Django instrumentation inserts its own.

Once the application is loaded, every URLconf and view imported, the heap is frozen (``gc.freeze``): the
hundreds of thousands of objects a Django process loads once are never traversed again by the cyclic
collector. Unfrozen, a full collection walked them all: 146 ms in one go, once every ~12,000 votes with
distinct tokens (each leaves an entry in the verified-token cache, so long-lived objects keep arriving),
stalling the requests queued at that worker: a tail of the vote's p99 (docs/performance.md).
"""

from __future__ import annotations

import gc
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
    application = get_wsgi_application()
    freeze_loaded_heap()
    return application


def freeze_loaded_heap() -> None:
    """Import what the first request would (every URLconf, so every view and serializer), collect once,
    and move every object alive now to the collector's permanent generation."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URLconfs and their views
    gc.collect()
    gc.freeze()
