"""Liveness and readiness endpoints, mounted by every service through ``servicekit.urls``.

- ``GET /healthz`` -- the process is alive and serving; touches no dependency, so an orchestrator
  never restarts a healthy process because the database blinked.
- ``GET /readyz`` -- the database, the cache and the broker each answer within
  ``SERVICEKIT["READINESS_TIMEOUT"]`` seconds. 200 with the result of each check, or 503
  problem+json naming what failed::

    {"type": ".../not-ready", "status": 503, "detail": "Not ready: broker unreachable.",
     "checks": {"database": "ok", "cache": "ok", "broker": "unreachable"}}
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from servicekit.conf import servicekit_settings
from servicekit.errors import PROBLEM_CONTENT_TYPE, problem_body

logger = logging.getLogger(__name__)


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return the value just written")
    cache.delete(key)


def check_broker() -> None:
    from celery import current_app

    timeout = servicekit_settings.READINESS_TIMEOUT
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
}


def run_checks(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``{"database": "ok" | "unreachable", ...}``; a failing check is logged, never raised."""
    results: dict[str, str] = {}
    for name in names:
        try:
            CHECKS[name]()
            results[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log
            logger.warning("readiness check failed", extra={"check": name, "error": repr(exc)[:300]})
            results[name] = "unreachable"
    return results


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "service": servicekit_settings.SERVICE_NAME})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = run_checks(servicekit_settings.READINESS_CHECKS)
    failed = [name for name, result in checks.items() if result != "ok"]
    backends = getattr(settings, "SERVICE_BACKENDS", {})
    if not failed:
        return JsonResponse(
            {"status": "ok", "service": servicekit_settings.SERVICE_NAME, "checks": checks, "backends": backends}
        )
    body = problem_body(
        status_code=503,
        detail="Not ready: " + ", ".join(f"{name} unreachable" for name in failed) + ".",
        instance=request.get_full_path(),
        code="not-ready",
    )
    body["checks"] = checks
    return JsonResponse(body, status=503, content_type=PROBLEM_CONTENT_TYPE)
