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
