"""One vote through the gateway is one trace (issue 10), received over real OTLP/HTTP from the running stack.

The session's stack exports every process's spans to ``tests.otlp_receiver`` (conftest), sampling
only requests that bring a sampled ``traceparent``. This test sends its own and checks, in the spans
that arrive:

- vote_service's web process: the server span is the child of the client's span; the outbox write
  (``vote.cast create``) is its child, and the one SQL statement (psycopg) that writes it nests in it;
- vote_service's worker (another process): the relay's publish span is the child of the outbox write;
- choice_service's and polls_service's consumers: each applies the event in a span whose parent is
  the relay's publish span, inside a batch span that links it, and Celery's task span joins the same
  trace through the message header;
- a replica miss (a vote for a poll vote_service has never heard of): vote_service's HTTP client span
  and polls_service's server span, the second the child of the first, in one trace.
The gateway forwards a client's ``traceparent`` as sent (the server span's parent is the client's span).
"""

from __future__ import annotations

import uuid

import pytest
import requests

from scripts.loadgen import Platform
from scripts.platform_stack import Stack
from tests.otlp_receiver import OtlpReceiver, Span

pytestmark = pytest.mark.stack

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP Span.SpanKind


def new_traceparent() -> tuple[str, str, str]:
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def _http_method(span: Span) -> str | None:
    # The instrumentations write the stable HTTP conventions or the older ones (OTEL_SEMCONV_STABILITY_OPT_IN).
    return span.attributes.get("http.request.method") or span.attributes.get("http.method")


def one(spans: list[Span], what: str, **match: object) -> Span:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in match.items())]
    assert len(found) == 1, f"{what}: expected one span matching {match}, got {[(s.service, s.name) for s in found]}"
    return found[0]


def test_one_vote_is_one_trace_across_every_process(
    stack: Stack, otlp_receiver: OtlpReceiver, gateway: requests.Session
) -> None:
    platform = Platform(gateway_url=stack.gateway_url, run_dir=stack.run_dir, owner_id=7001)
    poll = platform.create_polls(1, choices=2, prefix="Traced poll")[0]
    platform.wait_warm([poll])
    voter = platform.token(7002)

    # --- one vote with the client's own sampled traceparent ---------------------------------------------
    traceparent, trace_id, client_span = new_traceparent()
    answer = gateway.post(
        "/api/v1/votes/",
        json={"poll": poll.id, "choice": poll.choices[0]},
        headers={"Authorization": f"Bearer {voter}", "traceparent": traceparent},
        timeout=15,
    )
    assert answer.status_code == 201, answer.text

    def complete(_spans: list[Span]) -> list[Span] | None:
        # Every process exports on its own schedule (a batch every few seconds): the consumers' spans can
        # arrive before the relay's publish span (its worker exports after the broker confirmed), and both
        # before the web process's request span, so wait for all of them.
        trace = otlp_receiver.trace(trace_id)
        applied = {s.service for s in trace if s.name == "vote.cast apply"}
        published = any(s.service == "votes" and s.kind == PRODUCER and s.name.endswith(" publish") for s in trace)
        served = any(s.service == "votes" and s.kind == SERVER for s in trace)
        return trace if {"choices", "polls"} <= applied and published and served else None

    trace = otlp_receiver.wait_for(complete, timeout=20)
    by_id = {s.span_id: s for s in trace}

    server = one(trace, "vote_service's request", service="votes", kind=SERVER)
    assert server.parent_id == client_span, "the gateway must forward the client's traceparent unchanged"
    assert server.resource["service.instance.role"] == "web"
    assert server.resource["deployment.environment"] == "development" and server.resource["service.version"]
    create = one(trace, "the outbox write", service="votes", name="vote.cast create")
    assert create.kind == PRODUCER and by_id[create.parent_id] is not None
    # The outbox write happens inside the request (possibly under DRF/Django child spans).
    ancestor = by_id.get(create.parent_id)
    while ancestor is not None and ancestor.span_id != server.span_id:
        ancestor = by_id.get(ancestor.parent_id)
    assert ancestor is server, "the outbox write is part of vote_service's request"
    statements = [s for s in trace if s.parent_id == create.span_id and s.kind == CLIENT]
    assert any(
        "INSERT" in str(s.attributes.get("db.statement") or s.attributes.get("db.query.text")) for s in statements
    ), f"the psycopg span of the vote statement nests in the outbox write: {statements}"

    publish = one(trace, "the relay's publish", service="votes", kind=PRODUCER, parent_id=create.span_id)
    assert publish.name.endswith(" publish") and publish.attributes["messaging.rabbitmq.destination.routing_key"] == (
        "vote.cast"
    )
    assert publish.pid != server.pid and publish.resource["service.instance.role"] == "worker"

    for service in ("choices", "polls"):
        applied = one(trace, f"{service}'s apply", service=service, name="vote.cast apply")
        assert applied.parent_id == publish.span_id, f"{service}: the event's span continues the relay's publish"
        assert applied.attributes["event.outcome"] == "applied"
        assert applied.resource["service.instance.role"] == "worker"
        batch = by_id.get(applied.links[0][1]) if applied.links else None
        assert batch is not None and batch.kind == CONSUMER and batch.service == service, (
            f"{service}: the event's span links the batch span of its message"
        )
        assert (trace_id, publish.span_id) in batch.links, f"{service}: the batch span links every event's context"
        celery_run = by_id[batch.parent_id]
        assert celery_run.parent_id == publish.span_id and "handle_batch" in celery_run.name, (
            f"{service}: Celery's task span joins the trace through the message header"
        )
        event_id = applied.attributes["messaging.message.id"]
        log = (stack.logs_dir / f"{service}.worker.log").read_text(errors="replace")
        assert any("event applied" in line and event_id in line for line in log.splitlines()), (
            f"{service}: one 'event applied' line for {event_id}"
        )

    # --- a replica miss: vote_service asks polls_service over HTTP -----------------------------------------
    traceparent, miss_trace, _ = new_traceparent()
    answer = gateway.post(
        "/api/v1/votes/",
        json={"poll": str(uuid.uuid4()), "choice": str(uuid.uuid4())},
        headers={"Authorization": f"Bearer {voter}", "traceparent": traceparent},
        timeout=15,
    )
    assert answer.status_code in (400, 404, 422), answer.text

    def fetched(_spans: list[Span]) -> tuple[Span, Span] | None:
        spans = otlp_receiver.trace(miss_trace)
        clients = [s for s in spans if s.service == "votes" and s.kind == CLIENT and _http_method(s)]
        servers = {s.parent_id: s for s in spans if s.service == "polls" and s.kind == SERVER}
        return next(((c, servers[c.span_id]) for c in clients if c.span_id in servers), None)

    client, polls_server = otlp_receiver.wait_for(fetched, timeout=15)
    assert "/internal/polls/" in str(client.attributes.get("url.full") or client.attributes.get("http.url"))
    assert (
        polls_server.attributes.get("http.response.status_code", polls_server.attributes.get("http.status_code")) == 404
    )
