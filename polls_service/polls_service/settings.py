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
