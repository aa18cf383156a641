"""Celery tasks of polls_service: they load what they need and call services."""

from __future__ import annotations

from celery import shared_task

from polls.services import poll_close_expired


@shared_task(name="polls.close_expired_polls", ignore_result=True)
def close_expired_polls() -> int:
    """Beat, every ``POLLS_AUTO_CLOSE_SECONDS``: close open polls whose ``closes_at`` has passed."""
    return poll_close_expired()
