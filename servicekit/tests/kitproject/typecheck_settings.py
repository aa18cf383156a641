"""Settings the mypy django-stubs plugin loads (``[tool.django-stubs]`` in pyproject.toml).

The kit project's settings without its test app, whose event handlers need the suite's own event
registry: only Django's and servicekit's apps load, on embedded SQLite and a file cache. Nothing
connects to a server while types are checked.
"""

from kitproject.settings import *  # noqa: F403 - every setting of the kit project, then one change
from kitproject.settings import INSTALLED_APPS as KIT_APPS

INSTALLED_APPS = [app for app in KIT_APPS if app != "kitapp"]
