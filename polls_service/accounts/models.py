"""Registered machine clients of the OAuth 2.0 ``client_credentials`` grant (accounts.api.oauth).

A client authenticates with its ``client_id`` and a secret shown once at registration; only the secret's
hash is stored (the same password hasher as user accounts). Its tokens carry the scopes it was granted.
"""

from __future__ import annotations

from collections.abc import Collection

from django.core.exceptions import ValidationError
from django.db import models

# Scopes a machine client may hold; a client token is accepted only by views that require one of its scopes.
SCOPES = {"results:read": "read the results of polls (vote_service)"}


def invalid_scopes(scopes: Collection[str]) -> list[str] | None:
    """None when ``scopes`` names at least one scope and only ``SCOPES``; else its unknown ones (``[]``: none named)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    return unknown if unknown or not scopes else None


class OAuthClient(models.Model):
    client_id = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=150)
    secret_hash = models.CharField(max_length=256, editable=False)
    scopes = models.CharField(max_length=500, help_text="Space-separated scopes the client may request.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "OAuth client"
        ordering = ("client_id",)

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    def clean(self) -> None:
        invalid = invalid_scopes(self.scope_set)
        if invalid is not None:
            raise ValidationError(
                {"scopes": f"Scopes are some of {', '.join(sorted(SCOPES))}; not {invalid or 'none'}."}
            )

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())
