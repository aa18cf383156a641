"""Settings of vote_service. Shared settings come from servicekit; only what is this service's own is here."""

from pathlib import Path

from servicekit.settings import common_settings, env  # noqa: F401 - env is the one settings reader

BASE_DIR = Path(__file__).resolve().parent.parent

globals().update(
    common_settings(
        service="votes",
        base_dir=BASE_DIR,
        database_env="VOTE_DATABASE_URL",
        apps=["votes"],
        urlconf="vote_service.urls",
    )
)

# --- Other services (replica misses) ----------------------------------------------------------------
POLLS_INTERNAL_URL = env.str("POLLS_INTERNAL_URL", default="http://127.0.0.1:8001")
CHOICE_INTERNAL_URL = env.str("CHOICE_INTERNAL_URL", default="http://127.0.0.1:8002")
# Seconds a computed results document stays cached; writes and events invalidate it sooner.
RESULTS_CACHE_SECONDS = env.int("RESULTS_CACHE_SECONDS", default=300)
