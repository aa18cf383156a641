"""Dead letters: list them, replay them onto this service's queue.

    from servicekit.events.deadletters import replay_dead_letters
    replay_dead_letters()                 # every dead letter not yet replayed
    replay_dead_letters(ids=[3, 4])       # just these

``manage.py list_dead_letters`` / ``manage.py replay_dead_letters [--id N ...] [--type T] [--drain-broker]``
wrap these. Each dead letter is re-sent alone (a one-event batch); it goes through the inbox again,
so replaying one that had in fact been applied changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from servicekit.conf import servicekit_settings
from servicekit.events import bus


def pending_dead_letters(*, event_type: str | None = None, ids: list[int] | None = None) -> Any:
    from servicekit.events.models import DeadLetter

    qs = DeadLetter.objects.filter(replayed_at__isnull=True).order_by("id")
    if event_type:
        qs = qs.filter(event_type=event_type)
    if ids:
        qs = qs.filter(id__in=ids)
    return qs


def replay_dead_letters(*, event_type: str | None = None, ids: list[int] | None = None) -> int:
    """Re-send dead letters to ``<service>.events`` (attempt 0) and mark them replayed; returns how many."""
    from servicekit.events.models import DeadLetter

    queue_name = bus.events_queue_name(servicekit_settings.SERVICE_NAME)
    app = bus.celery_app()
    count = 0
    with bus.connect(app) as conn:
        producer = conn.Producer()
        bus.declare_topology(producer.channel)
        for letter in pending_dead_letters(event_type=event_type, ids=ids):
            bus.publish_to_queue(producer, letter.envelope, queue_name)
            DeadLetter.objects.filter(id=letter.id).update(replayed_at=timezone.now())
            count += 1
    return count


def drain_broker_dead_letters(*, requeue: bool = False) -> int:
    """Remove the messages RabbitMQ holds in ``<service>.events.dlq`` (their DeadLetter rows are the record).

    With ``requeue`` they are put back on ``<service>.events`` instead. Returns how many were taken.
    """
    service = servicekit_settings.SERVICE_NAME
    count = 0
    with bus.connect() as conn:
        channel = conn.default_channel
        bus.declare_topology(channel)
        queue = bus.dead_letter_queue(service)(channel)
        producer = conn.Producer()
        while True:
            message = queue.get(no_ack=False)
            if message is None:
                break
            if requeue:
                producer.publish(
                    message.body,
                    exchange="",
                    routing_key=bus.events_queue_name(service),
                    headers=message.headers,
                    content_type=message.content_type,
                    content_encoding=message.content_encoding,
                    delivery_mode=2,
                    retry=False,
                )
            message.ack()
            count += 1
    return count
