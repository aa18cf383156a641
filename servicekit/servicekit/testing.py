"""Test-suite helpers shared by every service.

Each service's root ``conftest.py`` points its suite at real servers on localhost before Django
loads its settings::

    from servicekit.testing import configure_test_environment
    configure_test_environment(project="polls_service", database_env="POLLS_DATABASE_URL", database="polls")

Variables already set (by ``make test``, CI or a developer) win over these defaults. Set
``TEST_NAMESPACE`` to give a concurrent run its own databases and runtime folder.
"""

from __future__ import annotations

import os
from pathlib import Path

REDIS_DB = {"polls_service": 1, "choice_service": 2, "vote_service": 3}


def configure_test_environment(*, project: str, database_env: str, database: str) -> None:
    """Default the environment to PostgreSQL, Redis and RabbitMQ on 127.0.0.1 for ``project``'s tests."""
    repo = Path(__file__).resolve().parents[2]
    namespace = os.environ.get("TEST_NAMESPACE", "")
    if namespace:
        database = f"{database}_{namespace}"
        project_dir = f"{project}-{namespace}"
    else:
        project_dir = project
    os.environ.setdefault(database_env, f"postgres://postgres@127.0.0.1:5432/{database}")
    os.environ.setdefault("REDIS_URL", f"redis://127.0.0.1:6379/{REDIS_DB.get(project, 0)}")
    os.environ.setdefault("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    os.environ.setdefault("RUN_DIR", str(repo / ".run" / "unit-tests" / project_dir))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{project}.settings")
    # pytest-django only finishes set-up for settings that are already configured.
    import django

    django.setup()
