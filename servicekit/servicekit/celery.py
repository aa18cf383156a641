"""The Celery app factory every service uses in its ``<service>_service/celery.py``::

    from servicekit.celery import create_celery_app
    app = create_celery_app("polls_service")

Configuration comes from Django settings under the ``CELERY_`` namespace (see
``servicekit.settings``); tasks are discovered in every installed app's ``tasks.py``. The request id
of the web request that queued a task travels in the task headers and is restored in the worker, so
logs of both sides share it.

Tracing (``servicekit.tracing``) starts in each worker child (``worker_process_init``, after the fork)
and is flushed when the child exits (``worker_process_shutdown``: a child recycled by
``max_tasks_per_child`` or stopped loses no span). Nothing happens without ``OTEL_EXPORTER_OTLP_ENDPOINT``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import (
    beat_init,
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutting_down,
)

from servicekit import metrics as _metrics  # noqa: F401 - WORKER_METRICS_PORT: the worker serves /metrics
from servicekit import tracing
from servicekit.logging import request_id_var


def create_celery_app(project: str) -> Celery:
    """A Celery app for ``<project>.settings``, configured from Django settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{project}.settings")
    app = Celery(project)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.autodiscover_tasks()
    return app


@before_task_publish.connect
def _propagate_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id = request_id_var.get()
    if headers is not None and request_id and "request_id" not in headers:
        headers["request_id"] = request_id


_task_tokens: dict[str, Any] = {}


@task_prerun.connect
def _bind_request_id(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    request_id = getattr(task.request, "request_id", None) if task is not None else None
    if task_id:
        _task_tokens[task_id] = request_id_var.set(request_id or task_id)


@task_postrun.connect
def _unbind_request_id(task_id: str | None = None, **kwargs: Any) -> None:
    token = _task_tokens.pop(task_id, None) if task_id else None
    if token is not None:
        request_id_var.reset(token)


@worker_process_init.connect
def _start_tracing(**kwargs: Any) -> None:
    tracing.setup(process="worker")


@worker_process_shutdown.connect
def _flush_tracing(**kwargs: Any) -> None:
    tracing.shutdown()


@beat_init.connect
def _log_beat_start(**kwargs: Any) -> None:
    # Beat runs --quiet (no banner) and Celery logs its start at INFO under celery.beat, which is at WARNING:
    # one ECS line says it runs (its schedule sends are not logged, see servicekit.settings).
    logging.getLogger("servicekit.celery").info("beat started", extra={"event": {"action": "beat-started"}})


@worker_ready.connect
def _quiet_shutdown_handlers(sender: Any = None, **kwargs: Any) -> None:
    # Celery's SIGTERM/SIGQUIT handlers print "worker: Warm shutdown (MainProcess)" as plain text: the same
    # handlers without that print; _log_shutdown says it as an ECS line.
    worker = getattr(sender, "controller", None)
    if worker is not None:
        from celery.apps import worker as program

        # celery-types lacks these two (functools.partial objects in celery.apps.worker).
        program.install_worker_term_handler(worker, verbose=False)  # type: ignore[attr-defined]
        program.install_worker_term_hard_handler(worker, verbose=False)  # type: ignore[attr-defined]


@worker_shutting_down.connect
def _log_shutdown(sig: str = "", how: str = "", **kwargs: Any) -> None:
    logging.getLogger("servicekit.celery").info(
        "worker: %s shutdown (%s)", how, sig, extra={"event": {"action": "worker-shutdown"}}
    )
