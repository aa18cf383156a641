"""WSGI entry point of polls_service: `python -m servicekit.server polls_service.wsgi:application`."""

from servicekit.wsgi import service_application

application = service_application("polls_service.settings")
