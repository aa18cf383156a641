"""Settings of choice_service. Shared settings come from servicekit; only what is this service's own is here."""

from pathlib import Path

from servicekit.settings import common_settings, env  # noqa: F401 - env is the one settings reader

BASE_DIR = Path(__file__).resolve().parent.parent

globals().update(
    common_settings(
        service="choices",
        base_dir=BASE_DIR,
        database_env="CHOICE_DATABASE_URL",
        apps=["choices"],
        urlconf="choice_service.urls",
    )
)

# --- Other services (replica misses, reconciliation) ----------------------------------------------
POLLS_INTERNAL_URL = env.str("POLLS_INTERNAL_URL", default="http://127.0.0.1:8001")
VOTE_INTERNAL_URL = env.str("VOTE_INTERNAL_URL", default="http://127.0.0.1:8003")

# --- Periodic tasks: repair the vote projection from vote_service's ledger (events engineer) ---------
# Set-wise and by version, so correct at any moment; run_when_idle only spares the database under load.
CELERY_BEAT_SCHEDULE["choices-reconcile-tallies"] = {  # noqa: F821 - set by common_settings
    "task": "servicekit.events.run_when_idle",
    "schedule": env.float("CHOICES_RECONCILE_SECONDS", default=300.0),
    "kwargs": {"task": "choices.reconcile_tallies"},
    "options": {"queue": CELERY_TASK_DEFAULT_QUEUE, "expires": 120.0},  # noqa: F821
}
