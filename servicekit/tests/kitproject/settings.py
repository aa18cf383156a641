"""Settings of the test project that exercises servicekit on its own."""

from pathlib import Path

from servicekit.settings import common_settings

BASE_DIR = Path(__file__).resolve().parent.parent

globals().update(
    common_settings(
        service="kit",
        base_dir=BASE_DIR,
        database_env="KIT_DATABASE_URL",
        apps=["kitapp"],
        urlconf="kitproject.urls",
    )
)
