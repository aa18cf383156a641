"""RSA keys for JWTs: loading PEM bundles, RFC 7638 thumbprints (``kid``) and JWK Sets.

This module imports no Django, so settings can call it while they load::

    from servicekit.jwks import auth_settings, issuer_settings
    SERVICEKIT = {..., **auth_settings(run=RUN_DIR)}          # every service: how to verify
    SERVICEKIT.update(issuer_settings(run=RUN_DIR))           # polls_service only: how to sign

and key code uses the helpers::

    keys = load_public_keys(pem_bundle)          # {kid: RSAPublicKey}
    jwk_set(keys)                                # {"keys": [{"kty": "RSA", "kid": ..., "n": ..., "e": ...}]}
    parse_jwk_set(document)                      # {kid: RSAPublicKey}, RSA signing keys only

A key's ``kid`` is its RFC 7638 thumbprint (SHA-256 over the canonical ``{"e","kty","n"}``), so every
service computes the same id from the same PEM without any shared configuration.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PEM_PUBLIC_BLOCK = re.compile(r"-----BEGIN (?:RSA )?PUBLIC KEY-----.+?-----END (?:RSA )?PUBLIC KEY-----", re.DOTALL)
# Keys shorter than this are refused wherever they come from (configuration or a fetched JWKS).
MIN_RSA_BITS = 2048


def _env_str(name: str, default: str) -> str:
    from servicekit.settings import env  # the one settings reader; imported late to avoid a cycle

    return env.str(name, default=default)


def _pem_text(value: str) -> str:
    """PEM from an environment variable: literal ``\\n`` sequences (one-line .env values) become newlines."""
    return value.replace("\\n", "\n").strip()


def auth_settings(*, run: Path) -> dict[str, Any]:
    """The ``SERVICEKIT`` entries every service needs to verify tokens and service calls (read from env)."""
    secrets = Path(run) / "secrets"
    production = _env_str("DJANGO_ENV", "development") == "production"
    defaults = PRODUCTION_THROTTLE_RATES if production else DEVELOPMENT_THROTTLE_RATES
    service_token = _env_str("SERVICE_TOKEN", "") or _read_secret(secrets / "service_token")
    if production and len(service_token) < 32:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("SERVICE_TOKEN must be set to a random value of at least 32 characters.")
    return {
        "JWT_ISSUER": _env_str("JWT_ISSUER", "polls-platform"),
        "JWT_AUDIENCE": _env_str("JWT_AUDIENCE", "polls-platform-api"),
        "JWT_PUBLIC_KEYS": _pem_text(_env_str("JWT_PUBLIC_KEYS", "")),
        "JWT_PUBLIC_KEYS_FILE": _env_str("JWT_PUBLIC_KEYS_FILE", str(secrets / "jwt_public.pem")),
        "JWT_LEEWAY_SECONDS": min(int(_env_str("JWT_LEEWAY_SECONDS", "30")), 30),
        "JWKS_URL": _env_str("JWKS_URL", "http://127.0.0.1:8001/.well-known/jwks.json"),
        "SERVICE_TOKEN": service_token,
        "TRUSTED_PROXIES": tuple(
            item.strip() for item in _env_str("TRUSTED_PROXIES", "127.0.0.1,::1").split(",") if item.strip()
        ),
        "THROTTLE_RATES": {
            scope: _env_str(variable, defaults[scope]) for scope, variable in THROTTLE_RATE_VARIABLES.items()
        },
    }


# Environment variable of each credential-endpoint budget (see servicekit.throttling).
THROTTLE_RATE_VARIABLES = {
    "login.ip": "LOGIN_RATE_PER_IP",
    "login.username": "LOGIN_RATE_PER_USERNAME",
    "register.ip": "REGISTER_RATE_PER_IP",
    "register.username": "REGISTER_RATE_PER_USERNAME",
}
# Production defaults are strict. Development (make up, the test stack) is looser per username (test
# suites log the operator in often) and lets one machine, where every browser tab and test comes from
# 127.0.0.1, register and log in a lot.
PRODUCTION_THROTTLE_RATES = {
    "login.ip": "100/min",
    "login.username": "10/min",
    "register.ip": "30/hour",
    "register.username": "10/min",
}
DEVELOPMENT_THROTTLE_RATES = {
    "login.ip": "1000/min",
    "login.username": "30/min",
    "register.ip": "300/min",
    "register.username": "30/min",
}


def issuer_settings(*, run: Path, production: bool = False) -> dict[str, Any]:
    """The ``SERVICEKIT`` entries of the token issuer (polls_service): private key and lifetimes.

    Access tokens live ``JWT_ACCESS_MINUTES`` (default 5, at most 15), refresh tokens
    ``JWT_REFRESH_MINUTES`` (default one day). In production a private key is required.
    """
    from django.core.exceptions import ImproperlyConfigured

    private_key = _pem_text(_env_str("JWT_PRIVATE_KEY", ""))
    private_key_file = _env_str("JWT_PRIVATE_KEY_FILE", str(Path(run) / "secrets" / "jwt_private.pem"))
    if production and not private_key and not Path(private_key_file).is_file():
        raise ImproperlyConfigured("JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE must name an RSA private key.")
    access_minutes = int(_env_str("JWT_ACCESS_MINUTES", "5"))
    if not 1 <= access_minutes <= 15:
        raise ImproperlyConfigured("JWT_ACCESS_MINUTES must be between 1 and 15.")
    return {
        "JWT_PRIVATE_KEY": private_key,
        "JWT_PRIVATE_KEY_FILE": private_key_file,
        "JWT_KEY_ID": _env_str("JWT_KEY_ID", ""),
        "JWT_ACCESS_SECONDS": access_minutes * 60,
        "JWT_REFRESH_SECONDS": int(_env_str("JWT_REFRESH_MINUTES", str(24 * 60))) * 60,
        # The issuer's own keys are its configuration; fetching its own JWKS could only deadlock a worker.
        "JWKS_URL": "",
    }


def _read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def read_file(path: str | os.PathLike[str] | None) -> str:
    """A file's text, or "" when it does not exist or cannot be read."""
    if not path:
        return ""
    return _read_secret(Path(path))


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_to_int(text: str) -> int:
    padded = text + "=" * (-len(text) % 4)
    return int.from_bytes(base64.urlsafe_b64decode(padded.encode("ascii")), "big")


def public_jwk(key: rsa.RSAPublicKey) -> dict[str, str]:
    """The RFC 7517 members of an RSA public key (``kty``, ``n``, ``e``)."""
    numbers = key.public_numbers()
    return {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}


def thumbprint(key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA public key: its ``kid``."""
    jwk = public_jwk(key)
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _check_strength(key: Any) -> rsa.RSAPublicKey:
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("only RSA public keys are accepted")
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    return key


def load_public_keys(pem_bundle: str) -> dict[str, rsa.RSAPublicKey]:
    """Every RSA public key in a PEM bundle, by thumbprint ``kid``. Malformed blocks raise ``ValueError``."""
    keys: dict[str, rsa.RSAPublicKey] = {}
    for block in PEM_PUBLIC_BLOCK.findall(pem_bundle or ""):
        key = _check_strength(serialization.load_pem_public_key(block.encode("ascii")))
        keys[thumbprint(key)] = key
    return keys


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An unencrypted PEM RSA private key (PKCS#1 or PKCS#8)."""
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the JWT private key must be an RSA key")
    _check_strength(key.public_key())
    return key


def public_pem(key: rsa.RSAPublicKey) -> str:
    """SubjectPublicKeyInfo PEM of a public key."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def private_pem(key: rsa.RSAPrivateKey) -> str:
    """Unencrypted PKCS#8 PEM of a private key (for dev secrets and tests only)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def generate_private_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key (dev secrets, tests)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk_set(keys: dict[str, rsa.RSAPublicKey]) -> dict[str, list[dict[str, str]]]:
    """A JWK Set document publishing ``keys`` for RS256 signature verification."""
    return {"keys": [{**public_jwk(key), "kid": kid, "use": "sig", "alg": "RS256"} for kid, key in keys.items()]}


def parse_jwk_set(document: Any) -> dict[str, rsa.RSAPublicKey]:
    """The RSA signature keys of a JWK Set, by ``kid``; anything else in the set is skipped."""
    keys: dict[str, rsa.RSAPublicKey] = {}
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set")
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA":
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
            continue
        kid, n, e = jwk.get("kid"), jwk.get("n"), jwk.get("e")
        if not (isinstance(kid, str) and isinstance(n, str) and isinstance(e, str)):
            continue
        try:
            key = _check_strength(rsa.RSAPublicNumbers(_b64url_to_int(e), _b64url_to_int(n)).public_key())
        except ValueError:
            continue
        keys[kid] = key
    return keys
