"""servicekit.tracing: nothing at all without an endpoint; with one, the SDK, the instrumentations and the
event pipeline's spans (publish continues the outbox write's context, consumers continue the publish).

Each case runs in a fresh interpreter: instrumenting patches libraries process-wide (Django's middleware
list, ``requests``), which this suite's other tests must never see.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent

PRELUDE = """
import json, os, sys
sys.path.insert(0, {here!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kitproject.settings")
os.environ.setdefault("RUN_DIR", {run_dir!r})
os.environ["EVENT_CONTRACTS_DIR"] = {contracts!r}
"""


def run(code: str, **env: str | None) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    for key, value in env.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    prelude = PRELUDE.format(
        here=str(HERE),
        run_dir=str(HERE.parents[1] / ".run" / "unit-tests" / "tracing"),
        contracts=str(HERE / "contracts"),
    )
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,  # a loaded machine; normally ~2 s
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_an_endpoint_nothing_is_installed() -> None:
    seen = run(
        """
        import requests
        from servicekit.wsgi import service_application
        application = service_application("kitproject.settings")
        from django.conf import settings
        from servicekit import tracing
        print(json.dumps({
            "setup": tracing.setup(process="worker"),
            "enabled": tracing.ENABLED,
            "sdk_loaded": any(m.startswith("opentelemetry.sdk") for m in sys.modules),
            "instrumentation_loaded": any(m.startswith("opentelemetry.instrumentation") for m in sys.modules),
            "requests_patched": hasattr(requests.Session.send, "__wrapped__"),
            "otel_middleware": [m for m in settings.MIDDLEWARE if "opentelemetry" in m],
        }))
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT=None,
    )
    assert seen == {
        "setup": False,
        "enabled": False,
        "sdk_loaded": False,
        "instrumentation_loaded": False,
        "requests_patched": False,
        "otel_middleware": [],
    }
    # OTEL_SDK_DISABLED wins over an endpoint.
    seen = run(
        "from servicekit import tracing\nimport django; django.setup()\nprint(json.dumps({'setup': tracing.setup()}))",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_SDK_DISABLED="true",
    )
    assert seen == {"setup": False}


def test_the_event_pipeline_continues_one_trace() -> None:
    seen = run(
        """
        import django; django.setup()
        import requests
        from django.conf import settings
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from servicekit import tracing
        from servicekit.events.event import Event

        exporter = InMemorySpanExporter()
        assert tracing.setup(process="worker", exporter=exporter)
        out = {
            "requests_patched": hasattr(requests.Session.send, "__wrapped__"),
            "otel_middleware": any("opentelemetry" in m for m in settings.MIDDLEWARE),
        }
        # The request that wrote the outbox row (sampled) and one that was not sampled.
        with tracing.tracer().start_as_current_span("POST /votes/") as request:
            with tracing.outbox_write("vote.cast", event_id="e1") as create:
                sampled = tracing.traceparent_of(create)
        unsampled = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-00"
        texts = [
            json.dumps({"id": "e1", "type": "vote.cast", "traceparent": sampled}),
            json.dumps({"id": "e2", "type": "vote.cast", "traceparent": unsampled}),
            json.dumps({"id": "e3", "type": "vote.cast", "traceparent": None}),
        ]
        original = list(texts)
        spans = tracing.PublishSpans("polls.events")
        header = spans.start("vote.cast", texts)
        spans.end(["vote.cast"])
        published = tracing.envelope_traceparent(texts[0])
        out["header_is_publish"] = header == published
        out["unsampled_untouched"] = texts[1:] == original[1:]
        events = [
            Event(id=f"e{i}", type="vote.cast", occurred_at="2026-01-01T00:00:00Z", producer="votes",
                  aggregate_id=f"v{i}", data={}, traceparent=json.loads(t)["traceparent"], version=1)
            for i, t in enumerate(texts, start=1)
        ]
        consume = tracing.ConsumeSpans(events, service="kit")
        with consume.applying():
            pass
        for event in events:
            consume.applied(event)
        consume.end()
        tracing.force_flush()
        by_name = {}
        for s in exporter.get_finished_spans():
            by_name.setdefault(s.name, []).append(s)
        create_s, = by_name["vote.cast create"]
        publish_s, = by_name["polls.events publish"]
        apply_s, = by_name["vote.cast apply"]
        batch_s, = by_name["vote.cast process"]
        out.update({
            "one_trace": len({s.context.trace_id for s in (create_s, publish_s, apply_s)}) == 1,
            "create_parent_is_request": create_s.parent.span_id == request.get_span_context().span_id,
            "publish_parent_is_create": publish_s.parent.span_id == create_s.context.span_id,
            "apply_parent_is_publish": apply_s.parent.span_id == publish_s.context.span_id,
            "apply_links_batch": [l.context.span_id for l in apply_s.links] == [batch_s.context.span_id],
            "batch_links": len(batch_s.links),
            "applied_outcome": apply_s.attributes["event.outcome"],
            "service_name": create_s.resource.attributes["service.name"],
            "role": create_s.resource.attributes["service.instance.role"],
        })
        print(json.dumps(out))
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT=None,
    )
    assert seen == {
        "requests_patched": True,
        "otel_middleware": True,
        "header_is_publish": True,
        "unsampled_untouched": True,
        "one_trace": True,
        "create_parent_is_request": True,
        "publish_parent_is_create": True,
        "apply_parent_is_publish": True,
        "apply_links_batch": True,
        "batch_links": 2,  # every event with a context, sampled or not
        "applied_outcome": "applied",
        "service_name": "kit",
        "role": "worker",
    }
