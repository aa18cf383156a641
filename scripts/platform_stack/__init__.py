"""The process supervisor of the Polls Platform: ``make up`` and the cross-service test session use it.

``scripts/stack.py`` is its command line (``up [--detach]``, ``down``, ``status``, ``logs``, ``venv``);
tests and scripts use ``Stack`` (``api.py``). The parts, in the order ``up`` runs them:

    venv.py       the virtualenv bootstrap (the only part run on the system Python)
    prepare.py    dev secrets, local servers, databases, reachability checks, migrations, static files
    specs.py      the process list: per service its web instances, a Celery worker and a beat, plus the gateway
    supervise.py  launching in own process groups, PIDs (recycled or ours), logs, stopping groups
    api.py        ``Stack``: start/stop, kill/revive/restart one process, stack.json, banner, status
    cli.py        the commands; the foreground ``up`` restarts a process that exits (with a back-off)
    common.py     paths, the service table, ``StackError`` and small stdlib helpers

Every module imports only the standard library at import time (``psycopg`` and ``scripts.gateway``
are imported where they are used), so ``python3 scripts/stack.py venv`` runs before ``.venv`` exists.
"""

from .api import AlreadyRunning, Stack
from .common import (
    REPO,
    SERVICES,
    Service,
    StackError,
    effective_env,
    free_port,
    http_status,
    mask_url,
    port_open,
    read_dotenv,
)
from .prepare import ensure_postgres_database, postgres_target
from .specs import ProcessSpec
from .supervise import Running, child_pids, group_members, proc_start_time, stop_processes

__all__ = [
    "REPO",
    "SERVICES",
    "AlreadyRunning",
    "ProcessSpec",
    "Running",
    "Service",
    "Stack",
    "StackError",
    "child_pids",
    "effective_env",
    "ensure_postgres_database",
    "free_port",
    "group_members",
    "http_status",
    "mask_url",
    "port_open",
    "postgres_target",
    "proc_start_time",
    "read_dotenv",
    "stop_processes",
]
