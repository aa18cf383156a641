"""Handlers of the test project: count events (one at a time, or a batch at once); fail on demand."""

import time
from collections import Counter

from django.db.models import F

from kitapp.models import Tally
from servicekit.events import Event, handles

FAILURES: dict[str, int] = {}
# The event ids each call of ``count_batched`` received, in this process (tests read it).
BATCH_CALLS: list[list[str]] = []


def _add(key: str, n: int = 1) -> None:
    if not Tally.objects.filter(key=key).update(count=F("count") + n):
        Tally.objects.create(key=key, count=n)


def _maybe_fail(key: str) -> None:
    if FAILURES.get(key, 0) > 0:
        FAILURES[key] -= 1
        Tally.objects.get_or_create(key=key + ":partial")  # rolled back with the failure
        raise RuntimeError(f"induced failure for {key}")


@handles("kit.happened")
def count_happened(event: Event) -> None:
    key = event.data["key"]
    if event.data.get("sleep"):
        time.sleep(event.data["sleep"])
    _maybe_fail(key)
    _add(key)
    if event.data.get("poison"):
        raise ValueError("this event can never be applied")


@handles("kit.batched", batch=True)
def count_batched(events: list[Event]) -> None:
    BATCH_CALLS.append([event.id for event in events])
    for event in events:
        _maybe_fail(event.data["key"])
    for key, n in Counter(event.data["key"] for event in events).items():
        _add(key, n)
