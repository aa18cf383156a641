"""Celery app of vote_service: `celery -A vote_service worker` / `celery -A vote_service beat`."""

from servicekit.celery import create_celery_app

app = create_celery_app("vote_service")
