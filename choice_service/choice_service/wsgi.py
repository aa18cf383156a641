"""WSGI entry point of choice_service: `gunicorn choice_service.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "choice_service.settings")

application = get_wsgi_application()
