"""servicekit's suite runs a tiny project ("kit") with its own event registry (tests/contracts).

Queue and exchange names carry the namespace ``kittest[-<TEST_NAMESPACE>]`` so a run never touches
the queues of a running stack or another engineer's suite on the same RabbitMQ.
"""

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
_ns = os.environ.get("TEST_NAMESPACE", "")
os.environ["EVENT_CONTRACTS_DIR"] = str(HERE / "contracts")
os.environ["EVENTS_NAMESPACE"] = f"kittest-{_ns}" if _ns else "kittest"

from servicekit.testing import configure_test_environment  # noqa: E402

configure_test_environment(project="kitproject", database_env="KIT_DATABASE_URL", database="servicekit_kit")
