"""servicekit.service_identity: per-service keys, short-lived tokens with an audience, the caller named by its key."""

from __future__ import annotations

import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from servicekit import jwks, service_identity
from servicekit.conf import servicekit_settings
from servicekit.service_identity import InvalidServiceCredential, outgoing_token, verify
from servicekit.service_tokens import mint
from servicekit.testing import sign_rs256, test_service_keys

KEYS = test_service_keys()


def token_of(caller: str, **options) -> str:
    options.setdefault("audience", servicekit_settings.SERVICE_NAME)
    return mint(caller=caller, private_key=KEYS[caller], **options)


def reason_of(token: str) -> str:
    with pytest.raises(InvalidServiceCredential) as refused:
        verify(token)
    return refused.value.reason


@pytest.fixture(autouse=True)
def fresh_caches():
    service_identity.reset()
    yield
    service_identity.reset()


@pytest.mark.parametrize("caller", ["polls", "choices", "votes"])
def test_a_token_names_the_service_whose_key_signed_it(caller) -> None:
    assert verify(token_of(caller)) == caller


def test_a_token_minted_for_another_service_is_refused() -> None:
    assert reason_of(token_of("choices", audience="polls")) == "service_wrong_audience"


def test_a_token_claiming_another_service_than_its_keys_owner_is_refused() -> None:
    """choice_service's key cannot speak for polls_service (a stolen key is only that service's)."""
    forged = mint(caller="polls", audience=servicekit_settings.SERVICE_NAME, private_key=KEYS["choices"])
    assert reason_of(forged) == "service_wrong_issuer"


def test_expired_long_lived_and_future_tokens_are_refused() -> None:
    assert reason_of(token_of("votes", now=time.time() - 120)) == "service_expired"
    assert reason_of(token_of("votes", lifetime=3600)) == "service_lifetime"
    assert reason_of(token_of("votes", now=time.time() + 600)) == "service_not_yet_valid"


def test_an_unknown_key_a_user_token_and_other_algorithms_are_refused() -> None:
    stranger = jwks.generate_private_key()
    assert reason_of(mint(caller="votes", audience=servicekit_settings.SERVICE_NAME, private_key=stranger)) == (
        "service_unknown_key"
    )
    claims = {"iss": "votes", "sub": "votes", "aud": "kit", "iat": 0, "exp": 0, "jti": "x"}
    none_alg = sign_rs256({"alg": "none", "kid": jwks.thumbprint(KEYS["votes"].public_key())}, claims, KEYS["votes"])
    assert reason_of(none_alg) in {"service_algorithm", "service_malformed"}
    assert reason_of("not.a.token") == "service_malformed"


def test_the_caller_reuses_its_token_until_shortly_before_it_expires(monkeypatch) -> None:
    first = outgoing_token("polls")
    assert outgoing_token("polls") == first
    assert outgoing_token("choices") != first
    later = time.time() + 60 - service_identity.RENEW_BEFORE_SECONDS + 1
    monkeypatch.setattr(service_identity.time, "time", lambda: later)
    assert outgoing_token("polls") != first


def test_a_rotated_key_set_accepts_both_keys_until_the_old_one_is_dropped() -> None:
    old, new = KEYS["polls"], jwks.generate_private_key()
    bundles = {name: jwks.public_pem(key.public_key()) for name, key in KEYS.items()}
    rotating = {**bundles, "polls": jwks.public_pem(old.public_key()) + jwks.public_pem(new.public_key())}
    me = servicekit_settings.SERVICE_NAME
    with override_settings(SERVICEKIT={**_kit_settings(), "SERVICE_PUBLIC_KEYS": rotating}):
        assert verify(mint(caller="polls", audience=me, private_key=old)) == "polls"
        assert verify(mint(caller="polls", audience=me, private_key=new)) == "polls"
    rotated = {**bundles, "polls": jwks.public_pem(new.public_key())}
    with override_settings(SERVICEKIT={**_kit_settings(), "SERVICE_PUBLIC_KEYS": rotated}):
        assert verify(mint(caller="polls", audience=me, private_key=new)) == "polls"
        assert reason_of(mint(caller="polls", audience=me, private_key=old)) == "service_unknown_key"


def test_a_service_without_its_own_key_cannot_call_out() -> None:
    keyless = {**_kit_settings(), "SERVICE_PRIVATE_KEY": "", "SERVICE_PRIVATE_KEY_FILE": ""}
    with override_settings(SERVICEKIT=keyless), pytest.raises(ImproperlyConfigured, match="no service key"):
        outgoing_token("polls")


def _kit_settings() -> dict:
    from django.conf import settings

    return dict(settings.SERVICEKIT)
