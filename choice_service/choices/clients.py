"""Clients for the services choice_service asks on a replica miss or for reconciliation.

Built on first use (not at import) so the target URL follows settings; see ``servicekit.http.service_client``.
"""

from __future__ import annotations

from django.conf import settings

from servicekit.http import ServiceClient, service_client


def polls_client() -> ServiceClient:
    return service_client("polls", settings.POLLS_INTERNAL_URL)


def votes_client() -> ServiceClient:
    return service_client("votes", settings.VOTE_INTERNAL_URL)
