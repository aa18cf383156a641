"""RSA keys for JWTs: loading PEM bundles, RFC 7638 thumbprints (``kid``) and JWK Sets.

This module imports no Django and reads no settings (``servicekit.settings`` builds the key settings;
``servicekit.auth`` signs and verifies with them). Key code uses the helpers::

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


def read_file(path: str | os.PathLike[str] | None) -> str:
    """A file's text (a PEM bundle, a private key), or "" when it does not exist or cannot be read."""
    if not path:
        return ""
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


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
