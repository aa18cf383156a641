"""Reads of the accounts app."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from accounts.models import OAuthClient


def user_get_by_username(*, username: str) -> AbstractBaseUser | None:
    """The user whose username matches ``username`` ignoring case (usernames are unique that way)."""
    return get_user_model().objects.filter(username__iexact=username).first()


def user_get_active(*, user_id: int) -> AbstractBaseUser | None:
    """The active user with ``user_id``, or None."""
    return get_user_model().objects.filter(pk=user_id, is_active=True).first()


def oauth_client_get_active(*, client_id: str) -> OAuthClient | None:
    """The active machine client ``client_id``, or None."""
    return OAuthClient.objects.filter(client_id=client_id, is_active=True).first()
