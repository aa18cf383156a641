"""Handlers of the test project: count events; fail on demand."""

import time

from django.db.models import F

from kitapp.models import Tally
from servicekit.events import Event, handles

FAILURES: dict[str, int] = {}


@handles("kit.happened")
def count_happened(event: Event) -> None:
    key = event.data["key"]
    if event.data.get("sleep"):
        time.sleep(event.data["sleep"])
    if FAILURES.get(key, 0) > 0:
        FAILURES[key] -= 1
        Tally.objects.get_or_create(key=key + ":partial")  # rolled back with the failure
        raise RuntimeError(f"induced failure for {key}")
    updated = Tally.objects.filter(key=key).update(count=F("count") + 1)
    if not updated:
        Tally.objects.create(key=key, count=1)
    if event.data.get("poison"):
        raise ValueError("this event can never be applied")
