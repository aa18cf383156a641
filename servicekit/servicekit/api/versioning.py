"""URL path versioning shared by every service: ``/api/v1/``, ``/api/v2/``, ``/api/v3/``.

A service mounts its API once and serves all three versions from the same views::

    from servicekit.api import versioned_urlpatterns

    urlpatterns = [*versioned_urlpatterns(router.urls)]   # -> api/<version>/polls/...

Views read ``request.version`` (``"v1"``, ``"v2"`` or ``"v3"``) and compare with
``version_at_least(request, "v2")``. Unknown versions never reach a view (the URL does not match: 404).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from django.urls import include, re_path
from rest_framework.versioning import URLPathVersioning

VERSIONS: tuple[str, ...] = ("v1", "v2", "v3")
LATEST = VERSIONS[-1]
VERSION_PATTERN = "|".join(VERSIONS)
# Resource ids are UUIDs: URL patterns match only those (``lookup_value_regex``, ``re_path``), so any
# other id is a plain 404 before a view runs.
UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

T = TypeVar("T")


class PathVersioning(URLPathVersioning):
    """DRF URL path versioning restricted to the platform's versions; the kwarg is ``version``."""

    allowed_versions = VERSIONS
    version_param = "version"
    default_version = None


def versioned_urlpatterns(urlpatterns: Sequence[Any], *, versions: Sequence[str] = VERSIONS) -> list[Any]:
    """Mount ``urlpatterns`` (e.g. ``router.urls``) under ``api/<version>/`` for the given versions."""
    pattern = "|".join(versions)
    return [re_path(rf"^api/(?P<version>{pattern})/", include(list(urlpatterns)))]


def version_index(version: str | None) -> int:
    """Position of ``version`` in ``VERSIONS`` (-1 when unknown or missing)."""
    try:
        return VERSIONS.index(version or "")
    except ValueError:
        return -1


def version_at_least(request_or_version: Any, minimum: str) -> bool:
    """True when the request's version (or the given version string) is ``minimum`` or later."""
    version = (
        request_or_version if isinstance(request_or_version, str) else getattr(request_or_version, "version", None)
    )
    return version_index(version) >= version_index(minimum) >= 0


def for_version(mapping: Mapping[str, T], version: str | None) -> T:
    """The value for ``version`` or, failing that, the latest earlier version that has one.

    ``for_version({"v1": PollV1Serializer, "v3": PollHALSerializer}, "v2")`` -> ``PollV1Serializer``.
    """
    index = version_index(version)
    if index < 0:
        index = len(VERSIONS) - 1
    for candidate in reversed(VERSIONS[: index + 1]):
        if candidate in mapping:
            return mapping[candidate]
    raise KeyError(f"no entry for version {version!r} or earlier in {sorted(mapping)}")


def successor_path(path: str, version: str) -> str:
    """The same path one version later (``/api/v1/polls/`` -> ``/api/v2/polls/``)."""
    index = version_index(version)
    if index < 0 or index + 1 >= len(VERSIONS):
        return path
    return path.replace(f"/api/{version}/", f"/api/{VERSIONS[index + 1]}/", 1)
