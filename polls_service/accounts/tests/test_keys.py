"""Published keys and rotation: JWKS contents, kid = RFC 7638 thumbprint, two keys at once, removal."""

from __future__ import annotations

import jwt
import pytest

from accounts.tests.conftest import PASSWORD
from servicekit import jwks
from servicekit.testing import assert_unauthorized, bearer, make_access_token, test_private_key
from servicekit.testing_upstream import FakeUpstream

pytestmark = pytest.mark.django_db


def _servicekit(settings, **changes) -> None:
    settings.SERVICEKIT = {**settings.SERVICEKIT, **changes}


def test_jwks_publishes_the_signing_key(client) -> None:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "max-age=300" in response["Cache-Control"]
    (key,) = response.json()["keys"]
    public = test_private_key().public_key()
    assert key["kid"] == jwks.thumbprint(public)
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert jwks.parse_jwk_set(response.json())[key["kid"]].public_numbers() == public.public_numbers()
    assert "d" not in key and "p" not in key  # never any private member


def test_thumbprint_matches_rfc7638_example() -> None:
    # RFC 7638 section 3.1: the example key and its SHA-256 thumbprint.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
        "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajr"
        "n1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    key = jwks.parse_jwk_set({"keys": [{"kty": "RSA", "kid": "x", "n": n, "e": "AQAB"}]})["x"]
    assert jwks.thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_rotation_accepts_both_published_keys_and_rejects_a_removed_one(settings, client, user) -> None:
    old_key, new_key = test_private_key(), jwks.generate_private_key()
    old_kid, new_kid = jwks.thumbprint(old_key.public_key()), jwks.thumbprint(new_key.public_key())
    old_token = make_access_token(user.pk, user.username, private_key=old_key)

    # Step 1: the new key is published next to the old one before anything is signed with it.
    both = jwks.public_pem(old_key.public_key()) + jwks.public_pem(new_key.public_key())
    _servicekit(settings, JWT_PUBLIC_KEYS=both)
    assert {key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]} == {old_kid, new_kid}

    # Step 2: the issuer signs with the new key; tokens of either key are accepted.
    _servicekit(settings, JWT_PRIVATE_KEY=jwks.private_pem(new_key), JWT_PUBLIC_KEYS=both)
    issued = client.post(
        "/api/v1/auth/token/",
        {"username": user.username, "password": PASSWORD},
        content_type="application/json",
        REMOTE_ADDR="198.18.250.1",
    ).json()
    assert jwt.get_unverified_header(issued["access"])["kid"] == new_kid
    assert client.get("/api/v1/auth/me/", **bearer(old_token)).status_code == 200
    assert client.get("/api/v1/auth/me/", **bearer(issued["access"])).status_code == 200

    # Step 3: the old key is withdrawn; its tokens are refused, the new ones still work.
    _servicekit(settings, JWT_PRIVATE_KEY=jwks.private_pem(new_key), JWT_PUBLIC_KEYS="")
    assert [key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]] == [new_kid]
    assert_unauthorized(client.get("/api/v1/auth/me/", **bearer(old_token)))
    assert client.get("/api/v1/auth/me/", **bearer(issued["access"])).status_code == 200


JWKS_PATH = "/.well-known/jwks.json"


@pytest.fixture
def jwks_server():
    """A JWKS endpoint on loopback (``servicekit.testing_upstream``) serving an empty key set at first."""
    with FakeUpstream() as server:
        publish(server)
        yield server


def publish(jwks_server: FakeUpstream, *private_keys) -> None:
    """Serve the public halves of ``private_keys`` as the remote JWKS (none: an empty set)."""
    jwks_server.respond(
        JWKS_PATH, jwks.jwk_set({jwks.thumbprint(k.public_key()): k.public_key() for k in private_keys})
    )


def test_keys_from_a_remote_jwks_are_cached_and_refetched_sparingly(settings, client, user, jwks_server) -> None:
    remote_key = jwks.generate_private_key()
    publish(jwks_server, remote_key)
    # A verifier that holds no key of its own (like choice and vote services without a PEM bundle).
    _servicekit(
        settings,
        JWT_PRIVATE_KEY="",
        JWT_PUBLIC_KEYS="",
        JWKS_URL=jwks_server.url + JWKS_PATH,
        JWKS_REFETCH_SECONDS=3600,
    )
    token = make_access_token(user.pk, user.username, private_key=remote_key)
    assert client.get("/api/v1/auth/me/", **bearer(token)).status_code == 200
    assert client.get("/api/v1/auth/me/", **bearer(token)).status_code == 200
    assert jwks_server.calls_to(JWKS_PATH) == 1  # cached

    # Unknown kids trigger at most one refetch per JWKS_REFETCH_SECONDS, whatever an attacker sends.
    for _ in range(5):
        stranger = make_access_token(user.pk, user.username, private_key=jwks.generate_private_key())
        assert_unauthorized(client.get("/api/v1/auth/me/", **bearer(stranger)))
    assert jwks_server.calls_to(JWKS_PATH) == 1


def test_a_key_newly_published_in_the_remote_jwks_is_picked_up_on_first_sight(
    settings, client, user, jwks_server
) -> None:
    first, second = jwks.generate_private_key(), jwks.generate_private_key()
    publish(jwks_server, first)
    _servicekit(
        settings, JWT_PRIVATE_KEY="", JWT_PUBLIC_KEYS="", JWKS_URL=jwks_server.url + JWKS_PATH, JWKS_REFETCH_SECONDS=0
    )
    assert (
        client.get(
            "/api/v1/auth/me/", **bearer(make_access_token(user.pk, user.username, private_key=first))
        ).status_code
        == 200
    )
    publish(jwks_server, first, second)
    token = make_access_token(user.pk, user.username, private_key=second)
    assert client.get("/api/v1/auth/me/", **bearer(token)).status_code == 200
    assert jwks_server.calls_to(JWKS_PATH) == 2


def test_a_key_withdrawn_from_the_remote_jwks_is_refused_once_the_cache_expires(
    settings, client, user, jwks_server
) -> None:
    remote_key = jwks.generate_private_key()
    publish(jwks_server, remote_key)
    _servicekit(
        settings,
        JWT_PRIVATE_KEY="",
        JWT_PUBLIC_KEYS="",
        JWKS_URL=jwks_server.url + JWKS_PATH,
        JWKS_CACHE_SECONDS=0,
        JWKS_REFETCH_SECONDS=0,
    )
    token = make_access_token(user.pk, user.username, private_key=remote_key)
    assert client.get("/api/v1/auth/me/", **bearer(token)).status_code == 200
    publish(jwks_server)
    assert_unauthorized(client.get("/api/v1/auth/me/", **bearer(token)))


def test_an_unreachable_jwks_means_401_not_500(settings, client, user) -> None:
    _servicekit(settings, JWT_PRIVATE_KEY="", JWT_PUBLIC_KEYS="", JWKS_URL="http://127.0.0.1:9/jwks.json")
    token = make_access_token(user.pk, user.username, private_key=jwks.generate_private_key())
    assert_unauthorized(client.get("/api/v1/auth/me/", **bearer(token)))


def test_weak_or_non_signature_keys_in_a_jwks_are_ignored() -> None:
    strong = jwks.generate_private_key().public_key()
    document = jwks.jwk_set({"good": strong})
    document["keys"].append({**document["keys"][0], "kid": "enc", "use": "enc"})
    document["keys"].append({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"})
    document["keys"].append({**document["keys"][0], "kid": "hs", "alg": "HS256"})
    assert list(jwks.parse_jwk_set(document)) == ["good"]


def test_an_expired_jwks_cache_is_refetched_at_most_once_per_interval(settings, client, user, jwks_server) -> None:
    remote_key = jwks.generate_private_key()
    publish(jwks_server, remote_key)
    _servicekit(
        settings,
        JWT_PRIVATE_KEY="",
        JWT_PUBLIC_KEYS="",
        JWKS_URL=jwks_server.url + JWKS_PATH,
        JWKS_CACHE_SECONDS=0,
        JWKS_REFETCH_SECONDS=3600,
    )
    token = make_access_token(user.pk, user.username, private_key=remote_key)
    for _ in range(3):
        assert client.get("/api/v1/auth/me/", **bearer(token)).status_code == 200
    assert jwks_server.calls_to(JWKS_PATH) == 1  # the stale set is used until the next refetch is due
