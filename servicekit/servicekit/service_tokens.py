"""The service token format, Django-free (load generators and stack tests mint service tokens too).

``Authorization: Service <JWT>``: RS256, ``kid`` = the signing key's RFC 7638 thumbprint, claims ``iss`` =
``sub`` = the calling service, ``aud`` = the called service, ``iat``, ``exp``, ``jti`` and ``token_type`` =
``"service"``. ``servicekit.service_identity`` mints them for a service's own calls and verifies them.
"""

from __future__ import annotations

import json
import time
import uuid

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.jwk import RSAKey

from servicekit import jwks

ALGORITHM = "RS256"
SCHEME = "Service"
TOKEN_TYPE = "service"
_REGISTRY = jws.JWSRegistry(algorithms=[ALGORITHM])


def mint(
    *, caller: str, audience: str, private_key: rsa.RSAPrivateKey, lifetime: int = 60, now: float | None = None
) -> str:
    """A service token of ``caller`` for ``audience``, signed with ``private_key`` (kid: its thumbprint)."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": caller,
        "sub": caller,
        "aud": audience,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": uuid.uuid4().hex,
        "token_type": TOKEN_TYPE,
    }
    header = {"alg": ALGORITHM, "typ": "JWT", "kid": jwks.thumbprint(private_key.public_key())}
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return jws.serialize_compact(header, payload, RSAKey.import_key(private_key), registry=_REGISTRY)
