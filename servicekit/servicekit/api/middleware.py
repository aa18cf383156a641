"""Django's browser middleware, skipped on the API's paths.

Sessions, the CSRF cookie, Django's own users, messages and static files serve the admin and its
pages. The API (``/api/``, ``/internal/``) authenticates every request by the token it carries
(``servicekit.auth``) and sets no cookie, so there they would only cost time: ~0.15 ms, ~6 % of a vote's
CPU (measured). Each class here is the original with one change -- on an API path the request goes
straight on -- and ``servicekit.settings`` lists them in ``MIDDLEWARE`` in the originals' places::

    "servicekit.api.middleware.SessionMiddleware",   # instead of django.contrib.sessions' own

They stay subclasses of the originals, so Django's checks (the admin's E408-E410) still find them.
CSRF's view check still runs everywhere (a view that is not ``csrf_exempt`` stays protected, as DRF's
views are exempt anyway); only its cookie handling is skipped on API paths.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.http import HttpRequest
from django.middleware import csrf
from whitenoise import middleware as whitenoise_middleware

API_PATH_PREFIXES = ("/api/", "/internal/")


def is_api_path(request: HttpRequest) -> bool:
    """Whether the request is for the token-authenticated API rather than the admin or a static file."""
    return request.path_info.startswith(API_PATH_PREFIXES)


class BrowserOnly:
    """Mixin for a middleware class: it runs for every path except the API's."""

    get_response: Any

    def __call__(self, request: HttpRequest) -> Any:
        if is_api_path(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


# whitenoise's middleware itself redefines WhiteNoise.__call__(environ, start_response) as __call__(request).
class WhiteNoiseMiddleware(BrowserOnly, whitenoise_middleware.WhiteNoiseMiddleware):  # type: ignore[misc]
    """Static files (``/static/<service>/``), never under an API path."""


class SessionMiddleware(BrowserOnly, sessions_middleware.SessionMiddleware):
    """Sessions for the admin."""


class CsrfViewMiddleware(BrowserOnly, csrf.CsrfViewMiddleware):
    """The CSRF cookie for the admin's forms (the view check runs on every path)."""


class AuthenticationMiddleware(BrowserOnly, auth_middleware.AuthenticationMiddleware):
    """Django users from the session, for the admin (the API's ``request.user`` comes from its token)."""


class MessageMiddleware(BrowserOnly, messages_middleware.MessageMiddleware):
    """The admin's flash messages."""
