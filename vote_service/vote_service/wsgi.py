"""WSGI entry point of vote_service: `python -m servicekit.server vote_service.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vote_service.settings")

application = get_wsgi_application()
