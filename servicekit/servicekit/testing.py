"""Test-suite helpers shared by every service.

Each service's root ``conftest.py`` points its suite at real servers on localhost before Django
loads its settings::

    from servicekit.testing import configure_test_environment
    configure_test_environment(project="polls_service", database_env="POLLS_DATABASE_URL", database="polls")

Variables already set (by ``make test``, CI or a developer) win over these defaults. Set
``TEST_NAMESPACE`` to give a concurrent run its own databases and runtime folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from servicekit.env import env

REDIS_DB = {"polls_service": 1, "choice_service": 2, "vote_service": 3}


def configure_test_environment(*, project: str, database_env: str, database: str) -> None:
    """Default the environment to PostgreSQL, Redis and RabbitMQ on 127.0.0.1 for ``project``'s tests."""
    repo = Path(__file__).resolve().parents[2]
    namespace = env.str("TEST_NAMESPACE", default="")
    if namespace:
        database = f"{database}_{namespace}"
        project_dir = f"{project}-{namespace}"
    else:
        project_dir = project
    os.environ.setdefault(database_env, f"postgres://postgres@127.0.0.1:5432/{database}")
    os.environ.setdefault("REDIS_URL", f"redis://127.0.0.1:6379/{REDIS_DB.get(project, 0)}")
    os.environ.setdefault("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    os.environ.setdefault("RUN_DIR", str(repo / ".run" / "unit-tests" / project_dir))
    # Unit suites reuse a few fixed user ids in one Redis DB, concurrently: a 403-burst count would add up
    # across tests and runs and block them. Tests of the rule switch it on (servicekit.detection).
    os.environ.setdefault("DETECT_FORBIDDEN_BURST", "off")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{project}.settings")
    install_test_keys()
    # pytest-django only finishes set-up for settings that are already configured.
    import django

    django.setup()


# --- Tokens and credentials for tests ---------------------------------------------------------------------
# Every test process signs with a key pair it generates itself (never a committed or dev key): the
# private key goes to JWT_PRIVATE_KEY (polls_service issues with it), the public key to JWT_PUBLIC_KEYS
# (every service verifies with it), and JWKS_URL is off so no test ever fetches keys from a running stack.
#
#     from servicekit.testing import make_access_token, bearer
#     client.get("/api/v1/votes/", **bearer(make_access_token(7, "alice")))
#     client.get("/internal/polls/<id>/", **service_credentials("votes"))   # a call from vote_service

import base64  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

TEST_ISSUER = "polls-platform"
TEST_AUDIENCE = "polls-platform-api"
_test_key: Any = None


def install_test_keys() -> None:
    """Generate this process's JWT key pair and service token and point the settings at them.

    Called by ``configure_test_environment`` before Django loads its settings. Forces the key
    variables (a developer's real keys must never sign or verify test tokens).
    """
    from servicekit import jwks

    key = test_private_key()
    os.environ["JWT_PRIVATE_KEY"] = jwks.private_pem(key)
    os.environ["JWT_PUBLIC_KEYS"] = jwks.public_pem(key.public_key())
    os.environ["JWT_PRIVATE_KEY_FILE"] = ""
    os.environ["JWT_PUBLIC_KEYS_FILE"] = ""
    os.environ["JWT_KEY_ID"] = ""
    os.environ["JWKS_URL"] = ""
    os.environ["JWT_ISSUER"] = TEST_ISSUER
    os.environ["JWT_AUDIENCE"] = TEST_AUDIENCE
    install_test_service_keys(PROJECT_SERVICES.get(env.str("DJANGO_SETTINGS_MODULE", default="").split(".")[0], ""))


# Whose test key each project's suite signs its calls with (servicekit's own "kit" borrows vote_service's).
PROJECT_SERVICES = {
    "polls_service": "polls",
    "choice_service": "choices",
    "vote_service": "votes",
    "kitproject": "votes",
}
_test_service_keys: dict[str, Any] = {}


def install_test_service_keys(service: str) -> None:
    """Give each of the three services a test key of its own; this process signs its calls as ``service``.

    The private keys travel in ``TEST_SERVICE_PRIVATE_KEYS`` (a child process of the suite reuses them),
    the public keys in ``SERVICE_PUBLIC_KEYS``; a developer's real service keys are never read.
    """
    from servicekit import jwks
    from servicekit.principal import SERVICES

    keys = test_service_keys()
    os.environ["TEST_SERVICE_PRIVATE_KEYS"] = json.dumps({name: jwks.private_pem(keys[name]) for name in SERVICES})
    os.environ["SERVICE_PUBLIC_KEYS"] = json.dumps(
        {name: jwks.public_pem(keys[name].public_key()) for name in SERVICES}
    )
    os.environ["SERVICE_KEYS_DIR"] = ""
    os.environ["SERVICE_PRIVATE_KEY_FILE"] = ""
    os.environ["SERVICE_PRIVATE_KEY"] = jwks.private_pem(keys[service]) if service else ""


def test_service_keys() -> dict[str, Any]:
    """Each service's test private key (``RSAPrivateKey``): inherited from the parent process, else generated."""
    if not _test_service_keys:
        from servicekit import jwks
        from servicekit.principal import SERVICES

        inherited = json.loads(env.str("TEST_SERVICE_PRIVATE_KEYS", default="") or "{}")
        for name in SERVICES:
            pem = inherited.get(name, "")
            _test_service_keys[name] = jwks.load_private_key(pem) if pem else jwks.generate_private_key()
    return dict(_test_service_keys)


test_service_keys.__test__ = False  # type: ignore[attr-defined]  # not a test function for pytest


def test_private_key() -> Any:
    """This process's test signing key (an ``RSAPrivateKey``), generated on first use."""
    global _test_key
    if _test_key is None:
        from servicekit import jwks

        pem = env.str("JWT_PRIVATE_KEY", default="")
        _test_key = jwks.load_private_key(pem) if pem.startswith("-----BEGIN") else jwks.generate_private_key()
    return _test_key


test_private_key.__test__ = False  # type: ignore[attr-defined]  # not a test function for pytest


def key_id(private_key: Any) -> str:
    """The ``kid`` (RFC 7638 thumbprint) of a private key's public half."""
    from servicekit import jwks

    return jwks.thumbprint(private_key.public_key())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_b64(value: Any) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def sign_rs256(header: dict[str, Any], claims: dict[str, Any], private_key: Any) -> str:
    """A compact JWS over exactly ``header`` and ``claims`` signed with RSASSA-PKCS1-v1_5 SHA-256."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = f"{_json_b64(header)}.{_json_b64(claims)}"
    signature = private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def token_claims(
    user_id: int,
    username: str,
    roles: Iterable[str] = ("user",),
    *,
    token_type: str = "access",
    lifetime: int = 300,
    issuer: str = TEST_ISSUER,
    audience: str = TEST_AUDIENCE,
) -> dict[str, Any]:
    """The claims the issuer puts in a token, for tests that build tokens by hand."""
    now = int(time.time())
    return {
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "sub": str(user_id),
        "username": username,
        "roles": list(roles),
        "token_type": token_type,
    }


def make_token(claims: dict[str, Any], *, headers: dict[str, Any] | None = None, private_key: Any = None) -> str:
    """Sign ``claims`` (RS256, ``kid`` of the key) with the test key unless another key is given."""
    key = private_key or test_private_key()
    header = {"alg": "RS256", "typ": "JWT", "kid": key_id(key), **(headers or {})}
    return sign_rs256(header, claims, key)


def make_access_token(
    user_id: int, username: str, roles: Iterable[str] = ("user",), *, private_key: Any = None, **overrides: Any
) -> str:
    """An access token the test settings trust, e.g. ``make_access_token(7, "alice", roles=("user", "operator"))``."""
    claims = {**token_claims(user_id, username, roles), **overrides}
    return make_token(claims, private_key=private_key)


def make_client_token(client_id: str, scope: str = "results:read", **overrides: Any) -> str:
    """An access token of an OAuth machine client (``client_credentials``) with ``scope``."""
    claims = {**token_claims(1, "unused", ()), "sub": f"client:{client_id}", "client_id": client_id, "scope": scope}
    claims.pop("username", None)
    claims.pop("roles", None)
    return make_token({**claims, **overrides})


def bearer(token: str) -> dict[str, str]:
    """Keyword arguments for Django's test client: ``client.get(url, **bearer(token))``."""
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def auth_headers(user_id: int = 1, username: str = "alice", roles: Iterable[str] = ("user",)) -> dict[str, str]:
    """``bearer(make_access_token(...))`` in one call."""
    return bearer(make_access_token(user_id, username, roles))


def service_token(caller: str, *, audience: str | None = None, lifetime: int = 60, now: float | None = None) -> str:
    """A service token of ``caller`` (signed with its test key) for ``audience`` (default: this service)."""
    from servicekit.conf import servicekit_settings
    from servicekit.service_tokens import mint

    return mint(
        caller=caller,
        audience=audience or servicekit_settings.SERVICE_NAME,
        private_key=test_service_keys()[caller],
        lifetime=lifetime,
        now=now,
    )


def service_credentials(caller: str, **token_options: Any) -> dict[str, str]:
    """Test-client keyword arguments for ``/internal/`` endpoints: a call from the service ``caller``."""
    return {"HTTP_AUTHORIZATION": f"Service {service_token(caller, **token_options)}"}


@dataclass(frozen=True)
class ForgedToken:
    """One row of the forged-token matrix: a name and the ``Authorization`` header to send (None: no header)."""

    name: str
    authorization: str | None

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for Django's test client."""
        return {"HTTP_AUTHORIZATION": self.authorization} if self.authorization is not None else {}

    def headers(self) -> dict[str, str]:
        """Headers for ``requests``."""
        return {"Authorization": self.authorization} if self.authorization is not None else {}


def forged_token_matrix(
    *,
    private_key: Any = None,
    issuer: str = TEST_ISSUER,
    audience: str = TEST_AUDIENCE,
    user_id: int = 424242,
    username: str = "mallory",
) -> list[ForgedToken]:
    """Every token an endpoint must refuse with 401 (issue 3), built against the real signing key.

    ``private_key`` is the key the services trust (the test key by default; the stack's key in
    end-to-end tests), so "valid except for X" cases really are valid except for X.
    """
    from servicekit import jwks

    key = private_key or test_private_key()
    kid = key_id(key)
    foreign = _foreign_key()
    foreign_kid = key_id(foreign)

    def claims(**changes: Any) -> dict[str, Any]:
        base = token_claims(user_id, username, issuer=issuer, audience=audience)
        base.update(changes)
        return {name: value for name, value in base.items() if value is not _DROP}

    def rs(claims_: dict[str, Any], signer: Any = key, **header: Any) -> str:
        head = {"alg": "RS256", "typ": "JWT", "kid": key_id(signer), **header}
        return "Bearer " + sign_rs256(head, claims_, signer)

    valid = rs(claims())[len("Bearer ") :]
    head_b64, payload_b64, signature_b64 = valid.split(".")
    tampered_payload = _json_b64(claims(sub="1", username="admin", roles=["user", "operator"]))
    flipped = "A" if signature_b64[-5] != "A" else "B"
    public_pem = jwks.public_pem(key.public_key()).encode()
    hs_input = f"{_json_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_json_b64(claims())}"
    hs_signature = _b64(hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest())
    none_input = f"{_json_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_json_b64(claims())}"
    now = int(time.time())

    return [
        ForgedToken("no-token", None),
        ForgedToken("empty-bearer", "Bearer "),
        ForgedToken("garbage", "Bearer not-a-jwt"),
        ForgedToken("garbage-three-segments", "Bearer aaaa.bbbb.cccc"),
        ForgedToken("alg-none", f"Bearer {none_input}."),
        ForgedToken("alg-none-with-old-signature", f"Bearer {none_input}.{signature_b64}"),
        ForgedToken("changed-claims-old-signature", f"Bearer {head_b64}.{tampered_payload}.{signature_b64}"),
        ForgedToken(
            "altered-signature", f"Bearer {head_b64}.{payload_b64}.{signature_b64[:-5]}{flipped}{signature_b64[-4:]}"
        ),
        ForgedToken("stripped-signature", f"Bearer {head_b64}.{payload_b64}."),
        ForgedToken("foreign-key-same-kid", rs(claims(), foreign, kid=kid)),
        ForgedToken("hs256-public-key-as-secret", f"Bearer {hs_input}.{hs_signature}"),
        ForgedToken("rs512-real-key", "Bearer " + _sign_rs512(key, kid, claims())),
        ForgedToken("kid-path-injection", rs(claims(), foreign, kid="../../../../../../dev/null")),
        ForgedToken("kid-sql-injection", rs(claims(), foreign, kid="x' UNION SELECT 'key' --")),
        ForgedToken("missing-kid", "Bearer " + sign_rs256({"alg": "RS256", "typ": "JWT"}, claims(), key)),
        ForgedToken("jku-header", rs(claims(), foreign, jku="http://127.0.0.1:9/jwks.json")),
        ForgedToken(
            "jwk-header", rs(claims(), foreign, jwk={**jwks.public_jwk(foreign.public_key()), "kid": foreign_kid})
        ),
        ForgedToken("x5u-header", rs(claims(), foreign, x5u="http://127.0.0.1:9/cert.pem")),
        ForgedToken("jku-header-real-key", rs(claims(), key, jku="http://127.0.0.1:9/jwks.json")),
        ForgedToken("expired-beyond-leeway", rs(claims(iat=now - 900, exp=now - 120))),
        ForgedToken("nbf-in-future", rs(claims(nbf=now + 600))),
        ForgedToken("missing-exp", rs(claims(exp=_DROP))),
        ForgedToken("missing-jti", rs(claims(jti=_DROP))),
        ForgedToken("missing-iat", rs(claims(iat=_DROP))),
        ForgedToken("missing-sub", rs(claims(sub=_DROP))),
        ForgedToken("non-numeric-sub", rs(claims(sub="admin"))),
        ForgedToken("wrong-aud", rs(claims(aud="some-other-api"))),
        ForgedToken("wrong-iss", rs(claims(iss="https://evil.example"))),
        ForgedToken("substring-iss", rs(claims(iss=issuer[: max(1, len(issuer) // 2)]))),
        ForgedToken("superstring-iss", rs(claims(iss=issuer + "-evil"))),
        ForgedToken(
            "unknown-crit-header",
            rs(claims(), key, crit=["urn:example:must-understand"], **{"urn:example:must-understand": True}),
        ),
        ForgedToken("refresh-token-as-access", rs(claims(token_type="refresh"))),
        ForgedToken("missing-token-type", rs(claims(token_type=_DROP))),
    ]


class _Drop:
    """Marker: leave this claim out."""


_DROP: Any = _Drop()


def _sign_rs512(private_key: Any, kid: str, claims: dict[str, Any]) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = f"{_json_b64({'alg': 'RS512', 'typ': 'JWT', 'kid': kid})}.{_json_b64(claims)}"
    signature = private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA512())
    return f"{signing_input}.{_b64(signature)}"


_foreign: Any = None


def _foreign_key() -> Any:
    """An attacker's RSA key, generated once per process."""
    global _foreign
    if _foreign is None:
        from servicekit import jwks

        _foreign = jwks.generate_private_key()
    return _foreign


def forged_token_names() -> list[str]:
    """The names of the forged-token cases, for ``pytest.mark.parametrize`` (built fresh per test)."""
    return [case.name for case in forged_token_matrix()]


def forged_token(name: str, **kwargs: Any) -> ForgedToken:
    """One freshly built case of ``forged_token_matrix`` by name."""
    for case in forged_token_matrix(**kwargs):
        if case.name == name:
            return case
    raise KeyError(name)


def send(client: Any, method: str, path: str, body: Any = None, **headers: Any) -> Any:
    """``method path`` with Django's test client, ``body`` (when given) as JSON."""
    if body is None:
        return getattr(client, method)(path, **headers)
    return getattr(client, method)(path, body, content_type="application/json", **headers)


@dataclass(frozen=True)
class ForgedRequest:
    """One request sending a forged token: the case's name, then ``method path`` with a JSON ``body``."""

    case: str
    method: str
    path: str
    body: Any = None

    def send(self, client: Any) -> Any:
        """Send it with Django's test client, the token built now (its times are relative to now)."""
        return send(client, self.method, self.path, self.body, **forged_token(self.case).client_kwargs())

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.case}"


Endpoint = tuple[str, str, Any]  # (method, path, JSON body or None)


def forged_token_requests(*, protected: Iterable[Endpoint], public: Iterable[Endpoint] = ()) -> list[ForgedRequest]:
    """Every forged-token case against every endpoint, each to be answered with ``assert_unauthorized``.

    ``protected`` endpoints need a user: every case, sending no token included. ``public`` ones allow
    anonymous reads, yet refuse a bad token rather than ignore it: every case but ``no-token``::

        @pytest.mark.parametrize("attempt", forged_token_requests(protected=PROTECTED, public=PUBLIC), ids=str)
        def test_forged_tokens_are_refused(client, attempt):
            assert_unauthorized(attempt.send(client), attempt.case)
    """
    names = forged_token_names()
    return [
        *(ForgedRequest(name, *endpoint) for endpoint in protected for name in names),
        *(ForgedRequest(name, *endpoint) for endpoint in public for name in names if name != "no-token"),
    ]


def assert_service_only(client: Any, path: str, *, callers: Iterable[str]) -> Any:
    """``GET path`` is for the services ``callers`` only; returns the answer to the first caller's call.

    Refused with a 401 problem+json: no ``Authorization`` header, a user's access token (even an
    operator's), a malformed or empty service credential, a caller's token minted for another service,
    an expired one, and one naming the caller but signed with another service's key. Refused with a 403
    naming the caller: a genuine token of every other service.
    """
    from servicekit.principal import SERVICES
    from servicekit.service_tokens import mint

    admitted = list(callers)
    caller = admitted[0]
    other = next(name for name in SERVICES if name != caller)
    forged = mint(caller=caller, audience=_own_service(), private_key=test_service_keys()[other])
    for case, headers in {
        "no credential": {},
        "an operator's access token": bearer(make_access_token(1, "alice", roles=("user", "operator"))),
        "a malformed service token": {"HTTP_AUTHORIZATION": "Service wrong-token"},
        "an empty service token": {"HTTP_AUTHORIZATION": "Service "},
        "a token minted for another service": service_credentials(caller, audience=f"not-{_own_service()}"),
        "an expired token": service_credentials(caller, now=time.time() - 600),
        "a token signed with another service's key": {"HTTP_AUTHORIZATION": f"Service {forged}"},
    }.items():
        response = client.get(path, **headers)
        assert response.status_code == 401, case
        assert response["Content-Type"] == "application/problem+json", case
    for stranger in (name for name in SERVICES if name not in admitted):
        response = client.get(path, **service_credentials(stranger))
        assert response.status_code == 403, stranger
        assert response["Content-Type"] == "application/problem+json"
        assert f"The {stranger} service may not call this endpoint." == response.json()["detail"]
    return client.get(path, **service_credentials(caller))


def _own_service() -> str:
    from servicekit.conf import servicekit_settings

    return str(servicekit_settings.SERVICE_NAME)


def assert_unauthorized(response: Any, case: str = "") -> None:
    """401, ``application/problem+json`` and ``WWW-Authenticate: Bearer ...`` (Django or requests response)."""
    headers = response.headers
    assert response.status_code == 401, f"{case}: expected 401, got {response.status_code}"
    assert headers.get("Content-Type", "").startswith("application/problem+json"), f"{case}: not problem+json"
    assert headers.get("WWW-Authenticate", "").startswith("Bearer"), f"{case}: no WWW-Authenticate: Bearer"
    body = response.json()
    assert body["status"] == 401 and body["type"].startswith("https://"), f"{case}: malformed problem {body}"


def ecs_fields(entry: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """An ECS log line's fields by their dotted names, whether the line nests them or writes them dotted."""
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if isinstance(value, dict):
            out.update(ecs_fields(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
