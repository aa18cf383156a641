"""WSGI entry point of choice_service: `python -m servicekit.server choice_service.wsgi:application`."""

from servicekit.wsgi import service_application

application = service_application("choice_service.settings")
