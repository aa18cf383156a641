"""Django admin for operators: the OAuth 2.0 machine clients (registered with ``manage.py oauth_client_register``,
which prints the secret once; here a client is found, deactivated or its scopes narrowed)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from accounts.models import OAuthClient


@admin.register(OAuthClient)
class OAuthClientAdmin(admin.ModelAdmin):
    list_display = ("client_id", "name", "scopes", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("client_id", "name")
    readonly_fields = ("client_id", "created_at")
    fields = ("client_id", "name", "scopes", "is_active", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a secret is shown once, by the management command
