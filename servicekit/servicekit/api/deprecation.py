"""Deprecation headers of superseded API versions (the policy is in README "API versions").

Every v1 response carries::

    Deprecation: @1780272000                       (RFC 9745: since when v1 is deprecated)
    Sunset: Tue, 01 Jun 2027 00:00:00 GMT          (RFC 8594: when v1 stops being served)
    Link: </api/v2/polls/>; rel="successor-version", </api/docs/>; rel="deprecation"

``VersionedViewMixin`` adds them; the dates come from ``SERVICEKIT["API_DEPRECATIONS"]``::

    SERVICEKIT = {"API_DEPRECATIONS": {"v1": {"deprecated": "2026-06-01", "sunset": "2027-06-01"}}}
"""

from __future__ import annotations

import calendar
import functools
from datetime import UTC, date, datetime
from typing import Any

from django.utils.http import http_date

from servicekit.api.versioning import successor_path
from servicekit.conf import servicekit_settings

servicekit_settings.register_defaults(
    {
        # Version -> {"deprecated": ISO date, "sunset": ISO date}. Versions not listed are current.
        "API_DEPRECATIONS": {"v1": {"deprecated": "2026-06-01", "sunset": "2027-06-01"}},
        # Where the deprecation policy is documented (linked with rel="deprecation").
        "API_DEPRECATION_POLICY_URL": "/api/docs/",
    }
)


def _timestamp(value: str | date) -> int:
    day = value if isinstance(value, date) else date.fromisoformat(value)
    return calendar.timegm(datetime(day.year, day.month, day.day, tzinfo=UTC).timetuple())


@functools.lru_cache(maxsize=16)
def _policy_dates(deprecated: str | date, sunset: str | date | None) -> tuple[str, str | None]:
    """The ``Deprecation`` and ``Sunset`` values of a policy: the same on every response, so computed
    once per policy (keyed by its dates, so a changed setting is a new entry, never a stale one)."""
    return f"@{_timestamp(deprecated)}", http_date(_timestamp(sunset)) if sunset else None


def deprecation_headers(version: str | None, path: str) -> dict[str, str]:
    """The ``Deprecation``, ``Sunset`` and ``Link`` headers for a response of ``version`` at ``path``."""
    policy = servicekit_settings.API_DEPRECATIONS.get(version or "")
    if not policy:
        return {}
    deprecation, sunset = _policy_dates(policy["deprecated"], policy.get("sunset"))
    headers = {"Deprecation": deprecation}
    if sunset:
        headers["Sunset"] = sunset
    links = [f'<{successor_path(path, version or "")}>; rel="successor-version"']
    if servicekit_settings.API_DEPRECATION_POLICY_URL:
        links.append(f'<{servicekit_settings.API_DEPRECATION_POLICY_URL}>; rel="deprecation"')
    headers["Link"] = ", ".join(links)
    return headers


def add_deprecation_headers(response: Any, version: str | None, path: str) -> None:
    """Set the deprecation headers on ``response`` (appending to an existing ``Link``)."""
    for name, value in deprecation_headers(version, path).items():
        if name == "Link" and response.has_header("Link"):
            value = f"{response['Link']}, {value}"
        response[name] = value
