"""Celery app of choice_service: `celery -A choice_service worker` / `celery -A choice_service beat`."""

from servicekit.celery import create_celery_app

app = create_celery_app("choice_service")
