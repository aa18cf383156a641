"""servicekit.auth.verify_token against PyJWT, the verifier it replaced (which parsed every token twice).

Differential: for hand-signed tokens with any mix of odd claims and headers, and for mangled token
texts, what ``verify_token`` accepts PyJWT accepts too, with the same claims; what PyJWT accepts is
accepted as well, except where joserfc is deliberately stricter (a time claim that is a string or a
bool, a header parameter other than ``alg``/``kid``/``typ``, a ``typ`` that is not a string).
"""

from __future__ import annotations

import math
import time
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servicekit import auth
from servicekit.auth import InvalidToken, keyring, verify_token
from servicekit.conf import servicekit_settings
from servicekit.testing import key_id, make_access_token, sign_rs256, test_private_key, token_claims


def pyjwt_verify(token: str, token_type: str = "access") -> dict[str, Any]:
    """The verification ``servicekit.auth`` did with PyJWT before joserfc (the reference)."""
    header = jwt.get_unverified_header(token)
    if header.get("alg") != "RS256" or "crit" in header or auth.FORBIDDEN_HEADERS.intersection(header):
        raise InvalidToken()
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > auth.MAX_KID_LENGTH:
        raise InvalidToken()
    key = keyring().get(kid)
    if key is None:
        raise InvalidToken()
    issuer = servicekit_settings.JWT_ISSUER
    claims = jwt.decode(
        token,
        key=key,
        algorithms=["RS256"],
        audience=servicekit_settings.JWT_AUDIENCE,
        issuer=issuer,
        leeway=min(int(servicekit_settings.JWT_LEEWAY_SECONDS), 30),
        options={"require": ["exp", "iat", "jti", "sub", "iss", "aud"], "verify_signature": True},
    )
    if claims.get("iss") != issuer or claims.get("token_type") != token_type:
        raise InvalidToken()
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise InvalidToken()
    if not isinstance(claims.get("exp"), int | float) or not isinstance(claims.get("nbf", 0), int | float):
        raise InvalidToken()
    return claims


def outcome(verify: Any, token: str) -> dict[str, Any] | None:
    auth.reset_keyring()  # no verified-token cache between the two verifiers
    try:
        return verify(token)
    except (InvalidToken, jwt.PyJWTError):
        return None


def deliberately_stricter(header: dict[str, Any], claims: dict[str, Any]) -> bool:
    odd_time = any(isinstance(claims.get(name), str | bool) for name in ("exp", "iat", "nbf"))
    odd_header = set(header) - {"alg", "kid", "typ"} or not isinstance(header.get("typ", ""), str)
    return bool(odd_time or odd_header)


# Times away from the leeway's edges (30 s), where PyJWT's int() and a float comparison may differ.
offsets = st.sampled_from([-100_000, -600, -31, -5, 0, 5, 29.25, 31, 600, 100_000])
json_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
)  # fmt: skip
claim_edit = st.one_of(
    st.tuples(st.just("drop"), st.none()),
    st.tuples(st.just("offset"), offsets),
    st.tuples(st.just("string-time"), offsets),
    st.tuples(st.just("value"), json_values),
    st.tuples(st.just("value"), st.sampled_from(["polls-platform", "polls-platform-api", ["polls-platform-api"]])),
)
claim_names = st.sampled_from(["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "token_type", "username", "extra"])
# Mostly one change or none, so that accepted tokens are common, and now and then several.
claim_changes = st.one_of(
    st.just({}),
    st.dictionaries(claim_names, claim_edit, max_size=1),
    st.dictionaries(claim_names, claim_edit, max_size=4),
)
header_names = st.sampled_from(["alg", "typ", "kid", "crit", "b64", "jku", "cty", "x5t", "foo"])
header_values = st.one_of(
    json_values, st.sampled_from(["RS256", "HS256", "none", "RS512", "JWT", True, False, ["b64"]])
)
header_changes = st.one_of(st.just({}), st.dictionaries(header_names, header_values, max_size=2))


def build(claim_edits: dict[str, Any], header_edits: dict[str, Any]) -> tuple[str, dict, dict]:
    key = test_private_key()
    now = int(time.time())
    claims = token_claims(7, "alice")
    for name, (kind, value) in claim_edits.items():
        if kind == "drop":
            claims.pop(name, None)
        elif kind == "offset":
            claims[name] = now + value
        elif kind == "string-time":
            claims[name] = str(math.floor(now + value))
        else:
            claims[name] = value
    header = {"alg": "RS256", "typ": "JWT", "kid": key_id(key), **header_edits}
    return sign_rs256(header, claims, key), header, claims


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claim_changes, header_changes)
def test_verify_token_accepts_exactly_what_pyjwt_accepts(claim_edits, header_edits) -> None:
    token, header, claims = build(claim_edits, header_edits)
    ours, reference = outcome(verify_token, token), outcome(pyjwt_verify, token)
    if ours is not None:
        assert reference == ours
    elif reference is not None:
        assert deliberately_stricter(header, claims), (header, claims)


OFFSETS = [-100_000, -600, -120, -31, -5, 0, 5, 29.25, 31, 600, 100_000]
ODD_VALUES = [None, True, 0, 1.5, "", "x", "polls-platform", "polls-platform-api", ["polls-platform-api"], [1]]
SINGLE_EDITS = [
    (name, edit)
    for name in ("exp", "iat", "nbf", "iss", "aud", "sub", "jti", "token_type", "username")
    for edit in [("drop", None)]
    + [("offset", offset) for offset in OFFSETS]
    + [("string-time", offset) for offset in OFFSETS[::3]]
    + [("value", value) for value in ODD_VALUES]
]


HEADER_EDITS = [
    (name, value)
    for name in ("alg", "typ", "kid", "crit", "b64", "jku", "jwk", "x5c", "cty", "x5t", "foo")
    for value in ["RS256", "HS256", "none", "RS512", "JWT", True, False, None, 1, ["b64"], {"kty": "RSA"}, "x" * 200]
]


def test_every_single_claim_or_header_change_is_judged_as_pyjwt_judges_it() -> None:
    edits = [({name: edit}, {}) for name, edit in SINGLE_EDITS] + [({}, {name: value}) for name, value in HEADER_EDITS]
    for claim_edits, header_edits in edits:
        token, header, claims = build(claim_edits, header_edits)
        ours, reference = outcome(verify_token, token), outcome(pyjwt_verify, token)
        assert ours == reference or (ours is None and deliberately_stricter(header, claims)), (header, claims)


def mangle(token: str, how: str, position: int, char: str) -> str:
    if how == "replace":
        index = position % len(token)
        return token[:index] + char + token[index + 1 :]
    if how == "insert":
        index = position % (len(token) + 1)
        return token[:index] + char + token[index:]
    if how == "delete":
        index = position % len(token)
        return token[:index] + token[index + 1 :]
    return token + char  # append


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["replace", "insert", "delete", "append"]),
    st.integers(min_value=0, max_value=2000),
    st.sampled_from(list("AB_-=.+/ !é\x00") + ["==", "%3D"]),
)
def test_a_mangled_token_is_accepted_only_where_pyjwt_accepts_it(how, position, char) -> None:
    token = mangle(make_access_token(7, "alice"), how, position, char)
    ours, reference = outcome(verify_token, token), outcome(pyjwt_verify, token)
    assert ours is None or ours == reference


@pytest.mark.parametrize(
    "payload",
    [b"[" * 3000, b"NaN", b'{"exp": NaN}', b'{"exp": Infinity}', b"[]", b'"text"', b"\xff"],
    ids=["deep-nesting", "nan", "nan-exp", "infinite-exp", "list", "string", "not-utf8"],
)
def test_odd_payloads_and_headers_are_refused_not_crashed(payload) -> None:
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = test_private_key()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    for header_segment, payload_segment in [
        (b64(b'{"alg":"RS256","kid":"' + key_id(key).encode() + b'"}'), b64(payload)),
        (b64(payload), b64(b"{}")),
    ]:
        signing_input = f"{header_segment}.{payload_segment}"
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        with pytest.raises(InvalidToken):
            verify_token(f"{signing_input}.{b64(signature)}")


def test_a_trusted_key_is_wrapped_for_joserfc_once_and_a_replaced_key_anew() -> None:
    """The key's joserfc wrapper is reused across tokens, never past the key it was made for."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    kid = key_id(test_private_key())
    token = make_access_token(1, "alice")
    trusted = keyring().get(kid)
    auth._jose_keys.pop(kid, None)
    first, _, _ = auth.verified_jws(token, {kid: trusted}.get)
    wrapper = auth._jose_keys[kid][1]
    again, _, _ = auth.verified_jws(token, {kid: trusted}.get)
    assert again == first and auth._jose_keys[kid][1] is wrapper

    # Another key published under the same kid (a rotation, an attacker's JWKS): judged by that key only.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    with pytest.raises(InvalidToken) as refused:
        auth.verified_jws(token, {kid: stranger}.get)
    assert refused.value.reason == "bad_signature"
    assert auth._jose_keys[kid][0] is stranger
    assert auth.verified_jws(token, {kid: trusted}.get)[0] == first  # and the trusted key again
