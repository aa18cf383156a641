"""Clients for the services vote_service asks on a replica miss.

Built on first use (not at import) so the target URL follows settings, one client per URL per process.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from servicekit.http import ServiceClient


@lru_cache(maxsize=8)
def _client(name: str, base_url: str) -> ServiceClient:
    return ServiceClient(name, base_url=base_url)


def polls_client() -> ServiceClient:
    return _client("polls", settings.POLLS_INTERNAL_URL)


def choices_client() -> ServiceClient:
    return _client("choices", settings.CHOICE_INTERNAL_URL)
