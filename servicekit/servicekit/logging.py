"""Request ids and ECS JSON logs (Elastic Common Schema, the layout of ``ecs-logging``).

``servicekit.settings`` configures every process -- web workers, Celery workers and beat, ``manage.py``
commands and the web server's own lines (``servicekit.server``) -- to write one JSON object per line
on stderr with ``EcsFormatter``::

    {"@timestamp": "2026-12-01T16:51:39.871Z", "log.level": "info", "message": "POST /api/v1/votes/ 201",
     "ecs.version": "1.6.0", "log": {"logger": "servicekit.access"}, "process": {"pid": 4242},
     "service": {"name": "votes", "version": "0.1.0", "environment": "production"},
     "trace": {"id": "4bf92f3577b34da6a3ce929d0e0e4736"}, "span": {"id": "00f067aa0ba902b7"},
     "http": {"request": {"id": "3f1c...", "method": "POST"}, "response": {"status_code": 201}},
     "url": {"path": "/api/v1/votes/"}, "user": {"id": "42"},
     "event": {"dataset": "votes.access", "duration": 2140000}}

Every line carries ``service.*``; ``trace.id``/``span.id`` when an OpenTelemetry span is current
(``servicekit.tracing``); ``http.request.id`` while a request or a task it caused is handled;
``user.id`` once ``servicekit.auth`` has authenticated the caller (``bind_user``). A log call may add
ECS fields with ``extra`` (nested dicts or dotted keys: ``extra={"event.action": "vote-cast"}``).
Secrets never reach a line: extra fields named like a credential (``password``, ``*token*``,
``authorization``, ``access``, ``refresh``...) and anything shaped like a JWT in a message are
replaced by ``[REDACTED]``.

``RequestIdMiddleware`` (first in ``MIDDLEWARE``) takes the caller's ``X-Request-ID`` when it is a
sane token, or generates one, keeps it in a context variable for the duration of the request, echoes
it in the response and logs one access line (``event.dataset`` ``<service>.access``). Celery tasks
carry the id of the request that caused them in the same variable (see ``servicekit.celery``).

The formatter builds each line's dict directly (about 20 µs, a fifth of ``ecs_logging.StdlibFormatter``'s
generic path): the access line is on the vote path. A line that cannot be formatted is written as a
minimal ECS line instead; logging never fails a request. ``configure`` (Django's ``LOGGING_CONFIG``)
also routes warnings and uncaught exceptions into the log.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import json
import logging
import logging.config
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import ecs_logging
from django.http import HttpRequest, HttpResponse

try:  # the API only; servicekit.tracing installs the SDK (without it no span is ever valid)
    from opentelemetry.trace import get_current_span
except ImportError:  # pragma: no cover - opentelemetry-api is in requirements/base.txt
    get_current_span = None  # type: ignore[assignment]

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_META = "HTTP_X_REQUEST_ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
user_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("user_id", default=None)

access_logger = logging.getLogger("servicekit.access")

ECS_VERSION = "1.6.0"  # the ECS version ecs-logging's layout follows (ecs_logging._meta.ECS_VERSION)
REDACTED = "[REDACTED]"
# Field names (the last part of a dotted name, lower-cased) whose value is never written.
_SECRET_NAMES = frozenset(
    {"password", "passwd", "secret", "authorization", "cookie", "access", "refresh", "credential", "api_key"}
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# Attributes every LogRecord has: anything else on a record came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(ecs_logging.StdlibFormatter._LOGRECORD_DICT) | {"taskName"}


def current_request_id() -> str | None:
    """The id of the request (or task) being handled in this context, if any."""
    return request_id_var.get()


def bind_user(user_id: object) -> None:
    """Record the authenticated caller of this request: its lines carry ``user.id`` from now on."""
    user_id_var.set(None if user_id is None else str(user_id))


def clean_request_id(raw: str | None) -> str:
    """The caller's id when it is a safe token (no log injection), otherwise a fresh one."""
    if raw and _VALID_REQUEST_ID.match(raw):
        return raw
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Bind a request id to the request and the logging context; echo it; log one access line."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        service = _service_name()
        self.dataset = f"{service}.access" if service else "access"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # From META: ``request.headers`` would build a dict of every header for this one.
        request_id = clean_request_id(request.META.get(_REQUEST_ID_META))
        request.request_id = request_id  # type: ignore[attr-defined]  # our attribute on Django's request
        token = request_id_var.set(request_id)
        user_token = user_id_var.set(None)
        started = time.perf_counter_ns()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            if access_logger.isEnabledFor(logging.INFO):
                status = response.status_code
                access_logger.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    status,
                    extra={
                        "http": {"request": {"method": request.method}, "response": {"status_code": status}},
                        "url": {"path": request.path},
                        "event": {"dataset": self.dataset, "duration": time.perf_counter_ns() - started},
                    },
                )
            return response
        finally:
            user_id_var.reset(user_token)
            request_id_var.reset(token)


def _service_name() -> str:
    try:
        from servicekit.conf import servicekit_settings

        return str(servicekit_settings.SERVICE_NAME or "")
    except Exception:  # noqa: BLE001 - settings not configured: no name
        return ""


@functools.lru_cache(maxsize=4096)
def _is_secret(name: str) -> bool:
    last = name.rsplit(".", 1)[-1].lower()
    return last in _SECRET_NAMES or "token" in last or "password" in last


def _put(root: dict[str, Any], node: dict[str, Any], key: str, value: Any) -> None:
    """Put ``value`` at the dotted ``key`` of ``node`` (copying dicts, redacting secrets and JWTs); a value
    whose shape clashes with what is there (a dict against a scalar) goes to ``root["labels"]``."""
    if _is_secret(key):
        value = REDACTED
    elif isinstance(value, str) and "eyJ" in value:
        value = _JWT.sub(REDACTED, value)
    full = key
    if "." in key:
        *parents, key = key.split(".")
        for part in parents:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                root.setdefault("labels", {})[full.replace(".", "_")] = str(value)
                return
            node = child
    existing = node.get(key)
    if isinstance(value, dict):
        if existing is None:
            existing = node[key] = {}
        elif not isinstance(existing, dict):
            root.setdefault("labels", {})[full.replace(".", "_")] = str(value)
            return
        for sub_key, sub_value in value.items():
            if sub_value is not None:
                _put(root, existing, str(sub_key), sub_value)
    elif isinstance(existing, dict):
        root.setdefault("labels", {})[full.replace(".", "_")] = str(value)
    else:
        node[key] = value


def _json_fallback(value: Any) -> str:
    return repr(value)


class EcsFormatter(ecs_logging.StdlibFormatter):
    """ECS JSON lines (ecs-logging's layout: ``@timestamp``, ``log.level``, ``message`` first, then nested
    fields) with the service, trace, request and user of the work being logged.

    ``service``, ``version`` and ``environment`` become ``service.*`` on every line. Configured in
    ``LOGGING`` by ``servicekit.settings.logging_config``.
    """

    def __init__(self, *, service: str = "", version: str = "", environment: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self._service = {k: v for k, v in (("name", service), ("version", version), ("environment", environment)) if v}
        self._encode = json.JSONEncoder(
            separators=(",", ":"), default=_json_fallback, ensure_ascii=self.ensure_ascii
        ).encode
        self._second = -1
        self._second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        try:
            return self._encode(self.format_to_ecs(record))
        except Exception:  # noqa: BLE001 - a log line must never fail its caller
            return self._encode(
                {
                    "@timestamp": self._timestamp(record),
                    "log.level": str(record.levelname).lower(),
                    "message": _JWT.sub(REDACTED, str(record.msg)),
                    "ecs.version": ECS_VERSION,
                    "log": {"logger": str(record.name)},
                    "service": self._service,
                    "error": {"message": "this line could not be formatted in full"},
                }
            )

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # strftime once a second, not once a line
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(record.msecs):03d}Z"

    def format_to_ecs(self, record: logging.LogRecord) -> dict[str, Any]:
        message = record.getMessage()
        if "eyJ" in message:
            message = _JWT.sub(REDACTED, message)
        result: dict[str, Any] = {
            "@timestamp": self._timestamp(record),
            "log.level": record.levelname.lower(),
            "message": message,
            "ecs.version": ECS_VERSION,
            "log": {"logger": record.name},
            "process": {"pid": record.process},
            "service": self._service.copy(),
        }
        if record.exc_info or record.stack_info:
            for key, value in (
                ("error.type", self._record_error_type(record)),
                ("error.message", self._record_error_message(record)),
                ("error.stack_trace", self._record_error_stack_trace(record)),
            ):
                if value is not None:
                    _put(result, result, key, value)
        if get_current_span is not None:
            context = get_current_span().get_span_context()
            if context.is_valid:
                result["trace"] = {"id": format(context.trace_id, "032x")}
                result["span"] = {"id": format(context.span_id, "016x")}
        request_id = request_id_var.get()
        if request_id is not None:
            result["http"] = {"request": {"id": request_id}}
        user_id = user_id_var.get()
        if user_id is not None:
            result["user"] = {"id": user_id}
        for key, value in record.__dict__.items():  # in the order given: a clash resolves the same way each time
            if key in _RECORD_ATTRIBUTES or value is None:
                continue
            if key in _DJANGO_EXTRAS:
                name, value = _DJANGO_EXTRAS[key](value)
                if name is None:
                    continue
                key = name
            _put(result, result, key, value)
        return result


def _django_request(request: Any) -> tuple[str | None, Any]:
    # django.request / django.server pass the request object: keep its method and path, never its headers.
    try:
        return "http.request.method", str(request.method)
    except Exception:  # noqa: BLE001
        return None, None


# Extras Django's own loggers add, mapped to ECS fields.
_DJANGO_EXTRAS: dict[str, Callable[[Any], tuple[str | None, Any]]] = {
    "status_code": lambda value: ("http.response.status_code", value),
    "request": _django_request,
    "server_time": lambda value: (None, None),
}


def configure(config: dict[str, Any]) -> None:
    """Django's ``LOGGING_CONFIG``: apply ``LOGGING``, and route what Python would print as plain text on
    stderr through it -- warnings (``py.warnings``) and uncaught exceptions of the main or any other
    thread (``servicekit.uncaught``, with ``error.*``) -- so those are ECS lines too."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    sys.excepthook = _uncaught
    threading.excepthook = _uncaught_in_thread


def _uncaught(kind: type[BaseException], error: BaseException, traceback: Any) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    logging.getLogger("servicekit.uncaught").critical("uncaught %s", kind.__name__, exc_info=(kind, error, traceback))


def _uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    logging.getLogger("servicekit.uncaught").error(
        "uncaught %s in thread %s",
        args.exc_type.__name__,
        args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
    )


def server_logging_config(target: str, environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The ``LOGGING`` of the service whose WSGI ``target`` (``vote_service.wsgi:application``) is served,
    for the web server's own lines (its main process never loads Django). None when the settings
    cannot be read: the server then keeps its own plain format."""
    environ = dict(os.environ if environ is None else environ)
    module = environ.get("DJANGO_SETTINGS_MODULE") or target.split(":", 1)[0].rsplit(".", 1)[0] + ".settings"
    try:
        config = getattr(importlib.import_module(module), "LOGGING", None)
    except Exception:  # noqa: BLE001 - settings that cannot load fail in the workers, with their own error
        return None
    return dict(config) if isinstance(config, dict) else None
