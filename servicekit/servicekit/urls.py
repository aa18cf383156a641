"""Operational endpoints every service mounts at its root::

    urlpatterns = [*ops_urlpatterns, ...]

``/healthz``, ``/readyz`` and ``/metrics`` are for orchestrators and scrapers; the gateway does not
route them (it answers its own ``/healthz``).
"""

from django.urls import path

from servicekit.health import healthz, readyz
from servicekit.metrics import metrics_view

ops_urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
]
