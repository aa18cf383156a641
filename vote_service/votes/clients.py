"""Clients for the services vote_service asks on a replica miss.

Built on first use (not at import) so the target URL follows settings; see ``servicekit.http.service_client``.
"""

from __future__ import annotations

from django.conf import settings

from servicekit.http import ServiceClient, service_client


def polls_client() -> ServiceClient:
    return service_client("polls", settings.POLLS_INTERNAL_URL)


def choices_client() -> ServiceClient:
    return service_client("choices", settings.CHOICE_INTERNAL_URL)
