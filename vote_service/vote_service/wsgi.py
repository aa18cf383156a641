"""WSGI entry point of vote_service: `python -m servicekit.server vote_service.wsgi:application`."""

from servicekit.wsgi import service_application

application = service_application("vote_service.settings")
