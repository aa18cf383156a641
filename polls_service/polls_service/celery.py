"""Celery app of polls_service: `celery -A polls_service worker` / `celery -A polls_service beat`."""

from servicekit.celery import create_celery_app

app = create_celery_app("polls_service")
