"""WSGI entry point of vote_service: `gunicorn vote_service.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vote_service.settings")

application = get_wsgi_application()
