"""RFC 9457 problem details (``application/problem+json``) for every error a service returns.

DRF views get them through the exception handler configured by ``servicekit.settings``::

    REST_FRAMEWORK = {"EXCEPTION_HANDLER": "servicekit.errors.problem_exception_handler"}

Plain Django paths (unknown URLs, CSRF failures, body too large, crashes) get the same shape through
the handlers a service's root ``urls.py`` installs::

    from servicekit.errors import install_django_handlers
    install_django_handlers(globals())

A validation error carries ``errors`` keyed by field (``non_field_errors`` for the object)::

    {"type": "https://polls.example/problems/validation-error", "title": "Invalid input.",
     "status": 400, "detail": "question: Ensure this field has no more than 500 characters.",
     "instance": "/api/v1/polls/", "errors": {"question": ["Ensure this field ..."]}}

Services raise ``Problem`` (or a subclass) for business-rule failures that are not field errors.
No stack trace or internal message ever reaches a client: unexpected exceptions become a generic 500
and are logged with the request id.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://polls.example/problems/"


class Problem(exceptions.APIException):
    """A business-rule failure with its own problem type, status and (optionally) field errors.

    ``raise Problem("Poll is not open.", status=409, code="poll-not-open")``

    ``extensions`` adds RFC 9457 extension members to the body (``{"choices": 1}``).
    """

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_detail = "The request could not be processed."
    default_code = "bad-request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ):
        super().__init__(detail=detail, code=code)
        if status is not None:
            self.status_code = status
        self.problem_code = code or self.default_code
        self.errors = errors
        self.headers = headers or {}
        self.extensions = extensions or {}


class Conflict(Problem):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class UnprocessableEntity(Problem):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request is well-formed but cannot be applied."
    default_code = "unprocessable"


class ServiceUnavailable(Problem):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A dependency is unavailable; try again shortly."
    default_code = "service-unavailable"


_TITLES = {
    400: "Bad request.",
    401: "Authentication required.",
    403: "Permission denied.",
    404: "Not found.",
    405: "Method not allowed.",
    406: "Not acceptable.",
    409: "Conflict.",
    412: "Precondition failed.",
    413: "Request body too large.",
    415: "Unsupported media type.",
    422: "Unprocessable request.",
    429: "Too many requests.",
    500: "Internal server error.",
    503: "Service unavailable.",
}


def problem_body(
    *,
    status_code: int,
    detail: str,
    instance: str,
    code: str | None = None,
    title: str | None = None,
    errors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem+json document; the single place its shape is defined."""
    code = code or _TITLES.get(status_code, "error").rstrip(".").lower().replace(" ", "-")
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title or _TITLES.get(status_code, "Error."),
        "status": status_code,
        "detail": detail,
        "instance": instance,
    }
    if errors:
        body["errors"] = errors
    return body


def _flatten_errors(data: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structure as ``{"field.sub": ["message", ...]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            flat.update(_flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list):
        if all(not isinstance(item, (dict, list)) for item in data):
            flat[prefix or "non_field_errors"] = [str(item) for item in data]
        else:
            for index, item in enumerate(data):
                flat.update(_flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "non_field_errors"] = [str(data)]
    return flat


def _summary(errors: dict[str, list[str]]) -> str:
    field, messages = next(iter(errors.items()))
    more = len(errors) - 1
    text = f"{field}: {messages[0]}" if field != "non_field_errors" else messages[0]
    return text + (f" (and {more} more field{'s' if more > 1 else ''})" if more else "")


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: every error becomes problem+json; the transaction is rolled back."""
    request = context.get("request")
    instance = request.get_full_path() if request is not None else ""

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = Problem("The request body is larger than this service accepts.", status=413, code="payload-too-large")
    elif isinstance(exc, SuspiciousOperation):
        exc = Problem("The request was rejected as malformed.", status=400, code="bad-request")
    elif isinstance(exc, (OperationalError, InterfaceError)):
        # The database connection was lost (a restart, a network cut): nothing was committed by this
        # request's transaction; Django drops the connection at the end of the request.
        logger.warning("database unavailable", extra={"error": repr(exc)[:300]})
        exc = ServiceUnavailable("The database is unavailable; try again shortly.", headers={"Retry-After": "1"})

    if not isinstance(exc, exceptions.APIException):
        return None  # Unexpected: Django's handler500 logs it and answers a generic problem.
    if exc.status_code in (401, 403, 429) and request is not None:
        from servicekit.detection import refused  # late: it imports the audit trail, which imports models

        refused(exc, request)

    headers: dict[str, str] = {}
    auth_header = getattr(exc, "auth_header", None)  # NotAuthenticated/AuthenticationFailed via the view
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)  # Throttled
    if wait:
        headers["Retry-After"] = str(int(wait) or 1)
    headers.update(getattr(exc, "headers", {}) or {})

    errors = None
    code = getattr(exc, "problem_code", None)
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten_errors(exc.detail)
        detail = _summary(errors) if errors else "Invalid input."
        code = "validation-error"
        title = "Invalid input."
    else:
        errors = getattr(exc, "errors", None)
        detail = str(exc.detail)
        title = None
        if code is None:
            default = exc.get_codes() if hasattr(exc, "get_codes") else None
            code = str(default).replace("_", "-") if isinstance(default, str) else None

    set_rollback()
    body = problem_body(
        status_code=exc.status_code, detail=detail, instance=instance, code=code, title=title, errors=errors
    )
    for key, value in (getattr(exc, "extensions", None) or {}).items():
        body.setdefault(key, value)
    return Response(body, status=exc.status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def problem_response(request: HttpRequest, status_code: int, detail: str, code: str | None = None) -> JsonResponse:
    """A problem+json answer for plain Django views (outside DRF)."""
    body = problem_body(status_code=status_code, detail=detail, instance=request.get_full_path(), code=code)
    return JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):
        return problem_response(
            request, 413, "The request body is larger than this service accepts.", "payload-too-large"
        )
    return problem_response(request, 400, "The request was rejected as malformed.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(request, 403, "You do not have permission to perform this action.")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(request, 404, "No resource lives at this address.")


def server_error(request: HttpRequest) -> JsonResponse:
    return problem_response(request, 500, "The service failed to handle the request; it has been logged.")


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    return problem_response(request, 403, "CSRF verification failed; reload the page and try again.", "csrf-failed")


def install_django_handlers(urlconf_globals: dict[str, Any]) -> None:
    """Set ``handler400/403/404/500`` in a root URLconf so non-DRF errors are problem+json too."""
    urlconf_globals["handler400"] = "servicekit.errors.bad_request"
    urlconf_globals["handler403"] = "servicekit.errors.permission_denied"
    urlconf_globals["handler404"] = "servicekit.errors.page_not_found"
    urlconf_globals["handler500"] = "servicekit.errors.server_error"
