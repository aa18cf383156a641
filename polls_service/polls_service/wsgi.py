"""WSGI entry point of polls_service: `python -m servicekit.server polls_service.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polls_service.settings")

application = get_wsgi_application()
