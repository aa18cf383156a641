"""Fixtures for the event machinery: a clean set of namespaced queues and helpers to read them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kitapp import events as kit_handlers

from servicekit.events import bus
from servicekit.events.outbox import reset_relay_throttle


def read_queue(name: str, *, limit: int = 10000) -> list[dict[str, Any]]:
    """Take every message from queue ``name``: [{"headers":..., "args":..., "kwargs":...}]."""
    messages = []
    with bus.connect() as conn:
        channel = conn.default_channel
        from kombu import Queue

        queue = Queue(name, durable=True, no_declare=True)(channel)
        while len(messages) < limit:
            message = queue.get(no_ack=True)
            if message is None:
                break
            body = message.body if isinstance(message.body, (bytes, str)) else json.dumps(message.body)
            args, kwargs, _ = json.loads(body)
            messages.append({"headers": message.headers, "args": args, "kwargs": kwargs})
    return messages


@pytest.fixture
def clean_queues():
    """Declare the kit topology and empty every queue of it (and the relay queue)."""
    with bus.connect() as conn:
        channel = conn.default_channel
        bus.declare_topology(channel)
        for queue in bus.celery_queues("kit") + bus.all_consumer_queues():
            queue(channel).declare()
            queue(channel).purge()
    reset_relay_throttle()
    bus.drop_cached_connection()
    yield
    reset_relay_throttle()


@pytest.fixture(autouse=True)
def _reset_failures():
    kit_handlers.FAILURES.clear()
    kit_handlers.BATCH_CALLS.clear()
    yield
    kit_handlers.FAILURES.clear()
    kit_handlers.BATCH_CALLS.clear()
