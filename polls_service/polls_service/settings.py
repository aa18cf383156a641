"""Settings of polls_service. Shared settings come from servicekit; only what is this service's own is here."""

from pathlib import Path

from servicekit.jwks import issuer_settings
from servicekit.settings import common_settings, env  # noqa: F401 - env is the one settings reader

BASE_DIR = Path(__file__).resolve().parent.parent

globals().update(
    common_settings(
        service="polls",
        base_dir=BASE_DIR,
        database_env="POLLS_DATABASE_URL",
        apps=["polls", "accounts", "rest_framework_simplejwt.token_blacklist"],
        urlconf="polls_service.urls",
    )
)

# --- Identity provider: only this service holds the JWT private key -------------------------------------
_production = env.str("DJANGO_ENV", default="development") == "production"
SERVICEKIT.update(issuer_settings(run=RUN_DIR, production=_production))  # noqa: F821 - set by common_settings

# --- Gates, called before polls_service commits: open freezes choices, close/delete seal votes ----------
CHOICE_INTERNAL_URL = env.str("CHOICE_INTERNAL_URL", default="http://127.0.0.1:8002")
VOTE_INTERNAL_URL = env.str("VOTE_INTERNAL_URL", default="http://127.0.0.1:8003")

# --- Periodic tasks: close open polls whose closes_at has passed ----------------------------------------
CELERY_BEAT_SCHEDULE["polls-close-expired"] = {  # noqa: F821 - set by common_settings
    "task": "polls.close_expired_polls",
    "schedule": env.float("POLLS_AUTO_CLOSE_SECONDS", default=15.0),
    "options": {"expires": 60.0},
}
CELERY_BEAT_SCHEDULE["accounts-flush-expired-tokens"] = {  # noqa: F821 - set by common_settings
    "task": "accounts.flush_expired_tokens",
    "schedule": env.float("TOKEN_FLUSH_SECONDS", default=3600.0),
    "options": {"expires": 600.0},
}
