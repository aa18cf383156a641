"""A bad build of vote_service for the release tests: its API raises on every request (an error a
broken release would have), before any view runs, so nothing is written; ``/healthz`` and
``/metrics`` work, as they would in a build that passes its health check. Every middleware outside
it sees the 500 the error becomes, the request metrics included: the release watches those.
Started by ``scripts/release.py --target tests.ops.bad_release:application``."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class BrokenRelease:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            raise RuntimeError("this release is broken")
        return self.get_response(request)


# Defined above first: building the application imports this module's BrokenRelease.
settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.BrokenRelease"]

from vote_service.wsgi import application  # noqa: E402, F401 - built with the middleware above
