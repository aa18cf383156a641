"""Request ids and JSON logs.

``RequestIdMiddleware`` (first in ``MIDDLEWARE``) takes the caller's ``X-Request-ID`` when it is a
sane token, or generates one, keeps it in a context variable for the duration of the request and
echoes it in the response. ``ContextFilter`` stamps every log record with the service name and that
request id, so a line logged anywhere -- a view, a service function, a library -- can be traced back
to its request::

    {"time": "...", "level": "INFO", "logger": "polls.services", "message": "poll opened",
     "service": "polls", "request_id": "3f1c..."}

Celery tasks carry the id of the request that caused them in the same variable (see
``servicekit.celery``).
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_META = "HTTP_X_REQUEST_ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

access_logger = logging.getLogger("servicekit.access")


def current_request_id() -> str | None:
    """The id of the request (or task) being handled in this context, if any."""
    return request_id_var.get()


def clean_request_id(raw: str | None) -> str:
    """The caller's id when it is a safe token (no log injection), otherwise a fresh one."""
    if raw and _VALID_REQUEST_ID.match(raw):
        return raw
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Bind a request id to the request and the logging context; echo it; log one access line."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # From META: ``request.headers`` would build a dict of every header for this one.
        request_id = clean_request_id(request.META.get(_REQUEST_ID_META))
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            if access_logger.isEnabledFor(logging.INFO):
                access_logger.info(
                    "request",
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            return response
        finally:
            request_id_var.reset(token)


class ContextFilter(logging.Filter):
    """Adds ``service`` and ``request_id`` to every record (never fails a log call)."""

    def __init__(self, service: str = "", name: str = ""):
        super().__init__(name)
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = request_id_var.get()
        return True
