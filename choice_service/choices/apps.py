from django.apps import AppConfig


class ChoicesConfig(AppConfig):
    name = "choices"
    default_auto_field = "django.db.models.BigAutoField"
