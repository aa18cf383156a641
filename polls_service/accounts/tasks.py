"""Periodic upkeep of the accounts app (scheduled by polls_service's beat)."""

from celery import shared_task

from accounts import services


@shared_task(name="accounts.flush_expired_tokens", ignore_result=True)
def flush_expired_tokens() -> int:
    """Drop refresh-token records (and their blacklist entries) past their expiry."""
    return services.token_flush_expired()
