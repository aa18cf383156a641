"""The Celery worker consumer used by every service (``CELERY_WORKER_CONSUMER``): quick reconnects.

Celery's consumer retries a lost broker connection with kombu's default backoff (2 s, 4 s, ... up to
30 s), so after a broker restart a worker could sit idle for half a minute while events wait. This
consumer retries every ``EVENTS_BROKER_RECONNECT_MAX`` seconds at most (default 2 s), starting at
0.5 s; everything else is Celery's own consumer.
"""

from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

from servicekit.env import env


class Consumer(CeleryConsumer):
    def ensure_connected(self, conn: Any) -> Any:
        original = conn.ensure_connection
        ceiling = env.float("EVENTS_BROKER_RECONNECT_MAX", default=2.0)

        def ensure_connection(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("interval_start", min(0.5, ceiling))
            kwargs.setdefault("interval_step", 0.5)
            kwargs.setdefault("interval_max", ceiling)
            return original(*args, **kwargs)

        conn.ensure_connection = ensure_connection
        try:
            return super().ensure_connected(conn)
        finally:
            del conn.ensure_connection
