#!/usr/bin/env python3
"""The process supervisor of the Polls Platform: ``make up`` and the cross-service test session use it.

    python3 scripts/stack.py up            # foreground: prefixed logs of every process; Ctrl-C stops all
    python3 scripts/stack.py up --detach   # start, wait until healthy, return (stop with `down`)
    python3 scripts/stack.py down          # stop everything `up` started (by PID and process group)
    python3 scripts/stack.py status        # what runs, what answers
    python3 scripts/stack.py logs          # follow every process's log (RUN_DIR/logs/*.log)
    python3 scripts/stack.py venv          # create/update the virtualenv only

``up`` creates the virtualenv when needed (``.venv``, pinned ``requirements/dev.txt`` plus editable
servicekit; a hash of the requirement files avoids reinstalling), generates dev secrets, starts local
PostgreSQL/Redis/RabbitMQ when a configured URL points at this machine, checks that each service's
database, cache and broker answer (one clear line naming the first that does not, exit 1), migrates
every service's own database, collects static files, runs ``ensure_operator`` when a service has it,
then starts per service its web instances (granian, ``servicekit.server``; two for ``up``, set with
``SERVICE_REPLICAS`` or per service ``POLLS_REPLICAS`` / ``CHOICE_REPLICAS`` / ``VOTE_REPLICAS``), a
Celery worker and a Celery beat, plus the Nginx gateway balancing over the instances, waits until every
``/healthz`` answers and prints the chosen backends and the URLs. The foreground ``up`` starts again
any process that exits (a crashed or killed web instance included).

Ports come from ``POLLS_PORT`` / ``CHOICE_PORT`` / ``VOTE_PORT`` / ``GATEWAY_PORT`` (8001-8003, 8080);
web instance n of a service listens on its port + 20·(n−1) (8001, 8021, ...);
the state lives in ``RUN_DIR`` (default ``<repo>/.run``): ``stack.json`` (PIDs), ``logs/``, ``nginx/``.

The code is the package ``scripts/platform_stack/`` (its docstring lists the parts); tests and scripts
use its ``Stack``. Only the bootstrap (virtualenv) part runs on the system Python; ``up`` re-executes
this script inside the virtualenv afterwards.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.platform_stack.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
