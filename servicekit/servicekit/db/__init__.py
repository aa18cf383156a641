"""Database backends of the platform (``DATABASES["default"]["ENGINE"]``); see ``postgresql``."""
