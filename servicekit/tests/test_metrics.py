"""Pipeline, breaker, auth and throttle metrics: each moves when its event happens, and /metrics shows it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from servicekit.auth import InvalidToken, JWTAuthentication
from servicekit.errors import ServiceUnavailable
from servicekit.events.models import DeadLetter, OutboxEvent
from servicekit.http import BREAKER_STATE, ServiceClient
from servicekit.metrics import PipelineCollector, metrics_view

pytestmark = pytest.mark.django_db(transaction=True)


def _samples(families) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_pipeline_collector_reads_backlog_age_and_dead_letters_at_scrape_time():
    old = timezone.now() - timedelta(seconds=90)
    for created in (old, timezone.now()):
        OutboxEvent.objects.create(
            event_id=uuid.uuid4(), event_type="kit.happened", aggregate_id="a", envelope={}, created_at=created
        )
    OutboxEvent.objects.create(
        event_id=uuid.uuid4(), event_type="kit.happened", aggregate_id="a", envelope={}, sent_at=timezone.now()
    )
    DeadLetter.objects.create(event_type="kit.happened", queue="q", envelope={}, error="boom")
    DeadLetter.objects.create(event_type="kit.happened", queue="q", envelope={}, error="x", replayed_at=timezone.now())

    samples = _samples(PipelineCollector().collect())

    assert samples[("events_outbox_pending", (("service", "kit"),))] == 2
    assert 89 <= samples[("events_outbox_oldest_pending_age_seconds", (("service", "kit"),))] < 120
    assert samples[("events_dead_letters", (("service", "kit"),))] == 1


def test_metrics_endpoint_serves_pipeline_figures_and_survives_a_broken_figure(monkeypatch, rf):
    def broken(self, service):
        raise RuntimeError("queue unreadable")
        yield  # pragma: no cover

    monkeypatch.setattr(PipelineCollector, "_queue", broken)
    response = metrics_view(rf.get("/metrics"))
    assert response.status_code == 200
    names = {f.name for f in text_string_to_metric_families(response.content.decode())}
    assert {"events_outbox_pending", "events_outbox_oldest_pending_age_seconds", "events_dead_letters"} <= names
    assert "events_queue_messages" not in names


def test_refused_bearer_tokens_are_counted_by_reason(rf):
    before = _value("auth_failures_total", service="kit", reason="malformed")
    request = rf.get("/", HTTP_AUTHORIZATION="Bearer not-a-token")
    with pytest.raises(InvalidToken):
        JWTAuthentication().authenticate(request)
    assert _value("auth_failures_total", service="kit", reason="malformed") == before + 1


def test_breaker_state_gauge_follows_the_shared_breaker(settings):
    settings.SERVICEKIT = {**settings.SERVICEKIT, "HTTP_CLIENT_BREAKER_FAIL_MAX": 1, "HTTP_CLIENT_RETRIES": 0}
    name = f"nowhere-{uuid.uuid4().hex[:8]}"
    client = ServiceClient(name, base_url="http://127.0.0.1:9")  # discard port: connection refused
    with pytest.raises(ServiceUnavailable):
        client.get_json("/x")
    assert BREAKER_STATE.labels(name)._value.get() == 2
    client.reset_breaker()
    assert BREAKER_STATE.labels(name)._value.get() == 0
