"""The embedded broker (kombu filesystem://) fans out too: the publisher declares every binding itself.

Virtual transports keep exchange bindings in the memory of each process, so a relay process that never
saw the consumers' declarations must still route each event to every subscribed queue.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from kombu import Connection, Queue

TESTS = Path(__file__).resolve().parents[1]

PRODUCER = textwrap.dedent(
    """
    import django
    django.setup()
    from django.core.management import call_command
    from django.db import transaction
    from servicekit.events import emit
    from servicekit.events.relay import relay_pending
    call_command("migrate", verbosity=0)
    with transaction.atomic():
        for i in range(3):
            emit("kit.happened", aggregate_id="a", version=i + 1, data={"key": "fs", "n": i})
    with transaction.atomic():
        emit("kit.unheard", aggregate_id="a", version=4, data={"key": "fs"})
    print("published", relay_pending())
    """
)


def test_relay_on_the_filesystem_broker_routes_to_every_subscribed_queue(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("KIT_DATABASE_URL",)}
    env.update(
        BROKER_URL="",
        RUN_DIR=str(tmp_path),
        PYTHONPATH=str(TESTS),
        EVENTS_RELAY_ON_COMMIT="0",
        DJANGO_SETTINGS_MODULE="kitproject.settings",
    )
    done = subprocess.run(
        [sys.executable, "-c", PRODUCER], cwd=TESTS, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "published 4" in done.stdout

    folder = tmp_path / "broker"
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "store_processed": False,
    }
    ns = os.environ["EVENTS_NAMESPACE"]
    received: dict[str, list] = {}
    messages: dict[str, list] = {}
    with Connection("filesystem://", transport_options=options) as conn:
        for service in ("kit", "other"):
            queue = Queue(f"{ns}.{service}.events", no_declare=True)(conn.default_channel)
            received[service], messages[service] = [], []
            while (message := queue.get(no_ack=True)) is not None:
                args, _kwargs, _ = json.loads(message.body) if isinstance(message.body, (str, bytes)) else message.body
                messages[service].append((message.headers["task"], [e["type"] for e in args[0]]))
                received[service] += [(e["type"], e["data"].get("n")) for e in args[0]]
    assert received["kit"] == [("kit.happened", 0), ("kit.happened", 1), ("kit.happened", 2)]
    assert received["other"] == [("kit.happened", 0), ("kit.happened", 1), ("kit.happened", 2), ("kit.unheard", None)]
    # One batch message per event type, in the order of each type's first row.
    batch = "servicekit.events.handle_batch"
    assert messages["kit"] == [(batch, ["kit.happened"] * 3)]
    assert messages["other"] == [(batch, ["kit.happened"] * 3), (batch, ["kit.unheard"])]
