"""The Celery app factory every service uses in its ``<service>_service/celery.py``::

    from servicekit.celery import create_celery_app
    app = create_celery_app("polls_service")

Configuration comes from Django settings under the ``CELERY_`` namespace (see
``servicekit.settings``); tasks are discovered in every installed app's ``tasks.py``. The request id
of the web request that queued a task travels in the task headers and is restored in the worker, so
logs of both sides share it.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun

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
