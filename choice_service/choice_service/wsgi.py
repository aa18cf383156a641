"""WSGI entry point of choice_service: `python -m servicekit.server choice_service.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "choice_service.settings")

application = get_wsgi_application()
