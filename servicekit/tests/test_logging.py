"""ECS JSON lines (servicekit.logging): fields, context (trace, request, user), redaction, robustness."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys
import threading
import warnings
from collections.abc import Callable, Iterator

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from opentelemetry.sdk.trace import TracerProvider
from rest_framework.request import Request

from servicekit.auth import JWTAuthentication
from servicekit.logging import (
    REDACTED,
    EcsFormatter,
    RequestIdMiddleware,
    access_logger,
    configure,
    request_id_var,
    server_logging_config,
)
from servicekit.settings import logging_config
from servicekit.testing import make_access_token

REQUIRED = ("@timestamp", "log.level", "message", "ecs.version", "log.logger", "service.name", "process.pid")


def flat(entry: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}, "c.d": 2}`` -> ``{"a.b": 1, "c.d": 2}``: ECS fields by their dotted names."""
    out: dict = {}
    for key, value in entry.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, f"{name}."))
        else:
            out[name] = value
    return out


@pytest.fixture
def read() -> Iterator[Callable[[], list[dict]]]:
    """``read()``: every line logged so far (``kit.test`` and the access logger), parsed and flattened."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(EcsFormatter(service="kit", version="1.2.3", environment="test"))
    loggers = [logging.getLogger("kit.test"), access_logger]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    try:
        yield lambda: [flat(json.loads(line)) for line in stream.getvalue().splitlines()]
    finally:
        for lg, (level, propagate) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate


def test_a_plain_line_has_the_ecs_fields_and_no_context_it_does_not_have(read: Callable[[], list[dict]]) -> None:
    logging.getLogger("kit.test").warning("poll %s opened", "p1")
    (entry,) = read()
    assert set(REQUIRED) <= set(entry)
    assert entry["log.level"] == "warning" and entry["message"] == "poll p1 opened"
    assert entry["log.logger"] == "kit.test"
    assert entry["service.name"] == "kit" and entry["service.version"] == "1.2.3"
    assert entry["service.environment"] == "test"
    assert entry["@timestamp"].endswith("Z") and "T" in entry["@timestamp"]
    assert not {"trace.id", "span.id", "http.request.id", "user.id"} & set(entry)


def test_the_current_span_request_and_extra_fields_are_on_the_line(read: Callable[[], list[dict]]) -> None:
    tracer = TracerProvider().get_tracer("test")  # a private provider: the global one stays untouched
    token = request_id_var.set("req-1")
    try:
        with tracer.start_as_current_span("work") as span:
            logging.getLogger("kit.test").info(
                "vote cast", extra={"event.action": "vote-cast", "event": {"id": "e1"}, "poll": "p1"}
            )
        context = span.get_span_context()
    finally:
        request_id_var.reset(token)
    (entry,) = read()
    assert entry["trace.id"] == format(context.trace_id, "032x")
    assert entry["span.id"] == format(context.span_id, "016x")
    assert entry["http.request.id"] == "req-1"
    assert entry["event.action"] == "vote-cast" and entry["event.id"] == "e1" and entry["poll"] == "p1"


def test_credentials_never_reach_a_line(read: Callable[[], list[dict]]) -> None:
    jwt = make_access_token(7, "alice")
    logger = logging.getLogger("kit.test")
    logger.info(
        "login with %s",
        jwt,
        extra={"password": "hunter2", "refresh": "r-secret", "user": {"access_token": "a-secret"}, "note": f"t={jwt}"},
    )
    try:
        raise ValueError(f"bad token {jwt}")
    except ValueError:
        logger.exception("failed")
    text = json.dumps(read())
    for secret in (jwt, "hunter2", "r-secret", "a-secret"):
        assert secret not in text
    first, second = read()
    assert first["password"] == REDACTED and first["user.access_token"] == REDACTED
    assert first["message"] == f"login with {REDACTED}"
    assert second["error.type"] == "ValueError" and "test_logging.py" in second["error.stack_trace"]


def test_clashing_or_unserialisable_extras_degrade_and_never_raise(read: Callable[[], list[dict]]) -> None:
    logger = logging.getLogger("kit.test")
    logger.info("clash", extra={"service": "not-a-dict", "event.duration": 5, "event.duration.unit": "ns"})
    logger.info("odd", extra={"thing": object()})
    clash, odd = read()
    assert clash["service.name"] == "kit" and clash["labels.service"] == "not-a-dict"
    assert clash["event.duration"] == 5 and clash["labels.event_duration_unit"] == "ns"
    assert odd["thing"].startswith("<object object")


@pytest.mark.django_db  # the token check reads this service's ended sessions (servicekit.sessions)
def test_the_access_line_carries_method_path_status_duration_and_the_authenticated_user(
    read: Callable[[], list[dict]],
) -> None:
    def view(request):  # what a DRF view does: authenticate, then answer
        user, _ = JWTAuthentication().authenticate(Request(request))
        logging.getLogger("kit.test").info("inside the view")
        return HttpResponse(status=201)

    middleware = RequestIdMiddleware(view)
    request = RequestFactory().post(
        "/api/v1/votes/", HTTP_AUTHORIZATION=f"Bearer {make_access_token(42, 'bob')}", HTTP_X_REQUEST_ID="rid-42"
    )
    response = middleware(request)
    assert response.status_code == 201 and response["X-Request-ID"] == "rid-42"
    inside, access = read()
    assert inside["user.id"] == "42" and inside["http.request.id"] == "rid-42"
    assert access["log.logger"] == "servicekit.access" and access["message"] == "POST /api/v1/votes/ 201"
    assert access["http.request.method"] == "POST" and access["url.path"] == "/api/v1/votes/"
    assert access["http.response.status_code"] == 201 and access["user.id"] == "42"
    assert access["event.dataset"].endswith(".access")
    assert isinstance(access["event.duration"], int) and access["event.duration"] > 0  # nanoseconds
    logging.getLogger("kit.test").info("after the request")
    assert not {"user.id", "http.request.id"} & set(read()[-1])  # both unbound again


def test_logging_config_applies_and_the_server_gets_the_same_layout(capsys: pytest.CaptureFixture[str]) -> None:
    config = logging_config(service="kit", level="INFO", version="9", environment="test")
    server = server_logging_config("kitproject.wsgi:application", {"DJANGO_SETTINGS_MODULE": "kitproject.settings"})
    assert server is not None and server["formatters"]["ecs"]["()"] == "servicekit.logging.EcsFormatter"
    assert server_logging_config("missing_project.wsgi:application", {}) is None
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        logging.config.dictConfig(config)
        logging.getLogger("kit.configured").info("configured")
        for handler in root.handlers:
            handler.flush()
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    err = capsys.readouterr().err.strip().splitlines()
    entry = flat(json.loads(err[-1]))
    assert entry["message"] == "configured" and entry["service.name"] == "kit" and entry["service.version"] == "9"


def test_configure_turns_warnings_and_uncaught_thread_errors_into_ecs_lines(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.excepthook, threading.excepthook)
    logging.captureWarnings(False)  # pytest swaps warnings.showwarning per test: start from what it set
    try:
        configure(logging_config(service="kit", level="INFO"))
        # What warnings.warn ends in (pytest records warnings itself, so the hook is called directly).
        warnings.showwarning(DeprecationWarning("a deprecated call"), DeprecationWarning, __file__, 1)
        worker = threading.Thread(target=lambda: 1 / 0, name="doomed")
        worker.start()
        worker.join()
        for handler in root.handlers:
            handler.flush()
    finally:
        root.handlers[:], _, sys.excepthook, threading.excepthook = saved
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    err = capsys.readouterr().err.strip().splitlines()
    entries = [flat(json.loads(line)) for line in err]  # every line is JSON
    warned = next(e for e in entries if e["log.logger"] == "py.warnings")
    assert "a deprecated call" in warned["message"] and warned["log.level"] == "warning"
    crashed = next(e for e in entries if e["log.logger"] == "servicekit.uncaught")
    assert crashed["message"] == "uncaught ZeroDivisionError in thread doomed"
    assert crashed["error.type"] == "ZeroDivisionError" and crashed["log.level"] == "error"
