from django.apps import AppConfig


class VotesConfig(AppConfig):
    name = "votes"
    default_auto_field = "django.db.models.BigAutoField"
