"""Repairs wait for a quiet queue: a reconciliation racing queued events would count them twice."""

from __future__ import annotations

import pytest
from django.db import transaction
from kitapp.models import Tally

from servicekit.events import emit
from servicekit.events.relay import relay_pending
from servicekit.events.tasks import events_backlog, run_when_idle

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_repair_is_skipped_while_events_are_queued_and_runs_once_they_are_consumed(clean_queues):
    import kitapp.tasks  # noqa: F401 - registers kitapp.repair

    with transaction.atomic():
        emit("kit.happened", aggregate_id="a", version=1, data={"key": "q"})
    relay_pending()
    assert events_backlog() == 1
    assert run_when_idle.run("kitapp.repair") is False
    assert not Tally.objects.filter(key="repaired").exists()

    from servicekit.events import bus

    from .conftest import read_queue

    read_queue(bus.events_queue_name("kit"))  # consumed
    assert events_backlog() == 0
    assert run_when_idle.run("kitapp.repair") is True
    assert Tally.objects.filter(key="repaired").exists()
