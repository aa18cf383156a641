"""Password hashing: Django's PBKDF2-SHA256 with an iteration count operators can raise.

Django 5.2 hashes with 1,000,000 iterations: ~0.4 s of CPU per register, login or password check on
this platform's 2-core machine, which is the point in production. Test stacks (the cross-service
suite registers and logs in ~1,300 times) set ``PASSWORD_HASH_ITERATIONS`` lower; production refuses
anything below Django's default (``polls_service.settings``). The iteration count is stored in every
hash, so hashes made at any count keep verifying, and Django re-hashes a password at the current
count on its next successful login.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.exceptions import ImproperlyConfigured

#: Django's own iteration count for PBKDF2-SHA256, the least production accepts.
DJANGO_ITERATIONS = PBKDF2PasswordHasher.iterations


def checked_iterations(value: int, *, production: bool) -> int:
    """``PASSWORD_HASH_ITERATIONS`` as configured: fewer than Django's count only outside production."""
    if value < 1 or (production and value < DJANGO_ITERATIONS):
        raise ImproperlyConfigured(
            f"PASSWORD_HASH_ITERATIONS must be at least {DJANGO_ITERATIONS} in production (and at least 1): {value}."
        )
    return value


class ConfiguredPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """``pbkdf2_sha256`` (the same algorithm name, so existing hashes verify) at ``PASSWORD_HASH_ITERATIONS``."""

    @property  # type: ignore[override]  # Django declares a class attribute; settings are read when it is used
    def iterations(self) -> int:
        return int(settings.PASSWORD_HASH_ITERATIONS)
