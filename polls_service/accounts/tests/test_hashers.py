"""PBKDF2 at a configurable iteration count: never below Django's in production; every stored hash keeps verifying."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher, check_password, get_hasher, make_password
from django.core.exceptions import ImproperlyConfigured

from accounts.hashers import DJANGO_ITERATIONS, ConfiguredPBKDF2PasswordHasher, checked_iterations


@pytest.fixture
def configured(settings):
    # Django drops its cached hashers when the setting changes (the setting_changed signal).
    settings.PASSWORD_HASHERS = ["accounts.hashers.ConfiguredPBKDF2PasswordHasher"]
    return settings


def test_the_default_is_djangos_count():
    assert DJANGO_ITERATIONS == PBKDF2PasswordHasher.iterations >= 1_000_000
    assert checked_iterations(DJANGO_ITERATIONS, production=True) == DJANGO_ITERATIONS


def test_production_refuses_fewer_iterations_than_djangos():
    with pytest.raises(ImproperlyConfigured, match="PASSWORD_HASH_ITERATIONS must be at least"):
        checked_iterations(DJANGO_ITERATIONS - 1, production=True)
    with pytest.raises(ImproperlyConfigured):
        checked_iterations(0, production=False)
    assert checked_iterations(1000, production=False) == 1000  # a test stack


def test_hashes_at_the_configured_count_and_verifies_any_count(configured):
    configured.PASSWORD_HASH_ITERATIONS = 1000
    encoded = make_password("correct horse battery staple", hasher=ConfiguredPBKDF2PasswordHasher())
    algorithm, iterations, _salt, _hash = encoded.split("$")
    assert (algorithm, iterations) == ("pbkdf2_sha256", "1000")
    assert check_password("correct horse battery staple", encoded)
    assert not check_password("wrong horse battery staple", encoded)
    # A hash made at another count (Django's own hasher, fewer iterations for speed) still verifies.
    other = PBKDF2PasswordHasher().encode("correct horse battery staple", "saltsaltsalt", iterations=2000)
    assert check_password("correct horse battery staple", other)
    assert ConfiguredPBKDF2PasswordHasher().must_update(other)  # re-hashed at the current count on login
    assert get_hasher().iterations == 1000
