"""Identity through the running gateway: forged tokens at every service, rotation, logout, throttling, keys.

Runs against the session's real stack (``tests/conftest.py``): Nginx in front of the services (granian)
with several workers, PostgreSQL and Redis. Crafted tokens are signed with the stack's own private
key (``RUN_DIR/secrets/jwt_private.pem``) so "valid except for X" really is valid except for X.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import pytest

from servicekit import jwks
from servicekit.testing import assert_unauthorized, forged_token_matrix, make_token, token_claims
from servicekit.throttle_rates import DEVELOPMENT_THROTTLE_RATES, THROTTLE_RATE_VARIABLES

pytestmark = pytest.mark.stack

PASSWORD = "gateway test password 42"
# One protected endpoint per service: (method, path, JSON body).
PROTECTED = [
    ("GET", "/api/v1/auth/me/", None),
    ("POST", "/api/v1/polls/", {"question": "Is this token forged?"}),
    ("POST", "/api/v1/choices/", {"poll": str(uuid.uuid4()), "text": "Forged?"}),
    ("GET", "/api/v1/votes/", None),
    ("POST", "/api/v2/votes/", {"poll": str(uuid.uuid4()), "choice": str(uuid.uuid4())}),
]


def _private_key(stack: Any) -> Any:
    return jwks.load_private_key((Path(stack.run_dir) / "secrets" / "jwt_private.pem").read_text())


def _budget(stack: Any, scope: str) -> int:
    rate = stack.env.get(THROTTLE_RATE_VARIABLES[scope]) or DEVELOPMENT_THROTTLE_RATES[scope]
    count = rate.partition("/")[0].strip()
    assert count.isdigit() and int(count) > 0, f"{scope} is switched off in this stack ({rate!r})"
    return int(count)


def _request(
    stack: Any,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    source: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request to the gateway on a fresh connection, optionally from another loopback address."""
    host, port = stack.gateway_url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30, source_address=(source, 0) if source else None)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {"Accept": "application/json", **(headers or {})}
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _register_and_login(gateway: Any, prefix: str = "gw") -> tuple[str, dict[str, Any]]:
    username = f"{prefix}{uuid.uuid4().hex[:12]}"
    created = gateway.post("/api/v1/auth/register/", json={"username": username, "password": PASSWORD})
    assert created.status_code == 201, created.text
    token = gateway.post("/api/v1/auth/token/", json={"username": username, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return username, token.json()


@pytest.fixture(scope="module")
def matrix(stack: Any) -> dict[str, Any]:
    return {case.name: case for case in forged_token_matrix(private_key=_private_key(stack))}


CASE_NAMES = [case.name for case in forged_token_matrix()]


@pytest.mark.parametrize("case", CASE_NAMES)
@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_forged_tokens_are_refused_by_every_service(gateway, matrix, case, method, path, body) -> None:
    response = gateway.request(method, path, json=body, headers=matrix[case].headers())
    assert_unauthorized(response, f"{case} at {method} {path}")


# What each protected endpoint answers a genuine token of a new user: the request gets past
# authentication and reaches the business rules (the polls and choices of PROTECTED do not exist).
GENUINE_ANSWERS = {
    ("GET", "/api/v1/auth/me/"): (200, None),
    ("POST", "/api/v1/polls/"): (201, None),
    ("POST", "/api/v1/choices/"): (422, "poll-not-found"),
    ("GET", "/api/v1/votes/"): (200, None),
    ("POST", "/api/v2/votes/"): (422, "poll-not-found"),
}


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_a_genuine_token_is_accepted_by_every_service(gateway, method, path, body) -> None:
    username, pair = _register_and_login(gateway)
    response = gateway.request(method, path, json=body, headers={"Authorization": f"Bearer {pair['access']}"})
    status, code = GENUINE_ANSWERS[(method, path)]
    assert response.status_code == status, (path, response.text)
    if code is not None:
        assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
        assert response.json()["type"].rsplit("/", 1)[-1] == code, response.text
    elif path == "/api/v1/auth/me/":
        assert response.json()["username"] == username
    elif method == "POST":
        claims = jwt.decode(pair["access"], options={"verify_signature": False})
        assert str(response.json()["owner"]) == claims["sub"], response.text
    else:
        assert response.json()["results"] == [], "a new user has cast no vote"


def test_jwks_publishes_the_stack_key(gateway, stack) -> None:
    response = gateway.get("/.well-known/jwks.json")
    assert response.status_code == 200
    kids = [key["kid"] for key in response.json()["keys"]]
    assert jwks.thumbprint(_private_key(stack).public_key()) in kids
    assert all("d" not in key for key in response.json()["keys"])


def test_register_login_me_refresh_logout(gateway) -> None:
    username, pair = _register_and_login(gateway)
    me = gateway.get("/api/v1/auth/me/", headers={"Authorization": f"Bearer {pair['access']}"})
    assert me.status_code == 200 and me.json()["username"] == username and me.json()["roles"] == ["user"]
    claims = jwt.decode(pair["access"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] <= 15 * 60

    rotated = gateway.post("/api/v1/auth/token/refresh/", json={"refresh": pair["refresh"]})
    assert rotated.status_code == 200
    assert_unauthorized(gateway.post("/api/v1/auth/token/refresh/", json={"refresh": pair["refresh"]}))

    new_refresh = rotated.json()["refresh"]
    assert gateway.post("/api/v1/auth/logout/", json={"refresh": new_refresh}).status_code == 204
    assert_unauthorized(gateway.post("/api/v1/auth/token/refresh/", json={"refresh": new_refresh}))


def test_privileged_fields_in_registration_are_rejected(gateway) -> None:
    for extra in ({"is_staff": True}, {"roles": ["operator"]}, {"is_superuser": True}):
        username = f"sneaky{uuid.uuid4().hex[:10]}"
        response = gateway.post("/api/v1/auth/register/", json={"username": username, "password": PASSWORD, **extra})
        assert response.status_code == 400, response.text
        login = gateway.post("/api/v1/auth/token/", json={"username": username, "password": PASSWORD})
        assert login.status_code == 401  # nothing was created


def test_twenty_concurrent_refreshes_yield_exactly_one_success(stack, gateway) -> None:
    _, pair = _register_and_login(gateway)
    barrier = threading.Barrier(20)

    def refresh(_: int) -> int:
        barrier.wait()
        status, _, _ = _request(stack, "POST", "/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]})
        return status

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = sorted(pool.map(refresh, range(20)))
    assert statuses == [200] + [401] * 19


def test_operator_gets_the_operator_role(gateway, operator_credentials) -> None:
    username, password = operator_credentials
    pair = gateway.post("/api/v1/auth/token/", json={"username": username, "password": password}).json()
    me = gateway.get("/api/v1/auth/me/", headers={"Authorization": f"Bearer {pair['access']}"})
    assert me.json()["roles"] == ["operator", "user"]


def test_login_budget_per_username_holds_across_workers(stack, gateway) -> None:
    """500 concurrent attempts for one username: at most the budget reach the password check."""
    budget = _budget(stack, "login.username")
    username, _ = _register_and_login(gateway, prefix="target")
    source = "127.0.0.9"  # its own client address: the per-IP budget of other tests is untouched
    barrier = threading.Barrier(50)

    def attempt(n: int) -> tuple[int, dict[str, str], bytes]:
        if n < 50:
            barrier.wait()
        return _request(
            stack,
            "POST",
            "/api/v1/auth/token/",
            {"username": username, "password": "not the password"},
            source=source,
        )

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(attempt, range(500)))
    statuses = [status for status, _, _ in results]
    passed = statuses.count(401)
    assert set(statuses) <= {401, 429}, sorted(set(statuses))
    assert budget - 5 <= passed <= budget + 5, (passed, budget)  # issue 3: the budget, within 1 % of 500
    for status, headers, body in results:
        if status == 429:
            assert int(headers["retry-after"]) >= 1
            assert headers["content-type"].startswith("application/problem+json")
            assert json.loads(body)["status"] == 429
    # The right password is refused too while the budget is spent.
    status, _, _ = _request(
        stack, "POST", "/api/v1/auth/token/", {"username": username, "password": PASSWORD}, source="127.0.0.10"
    )
    assert status == 429


def test_spoofed_forwarded_for_does_not_escape_the_ip_budget(stack) -> None:
    """Through the gateway the client IP is Nginx's view of the peer, whatever X-Forwarded-For claims."""
    budget = _budget(stack, "register.ip")
    source = "127.0.0.11"
    statuses = []
    for n in range(budget + 3):
        spoof = {"X-Forwarded-For": f"203.0.113.{n % 250}", "X-Real-IP": f"198.51.100.{n % 250}"}
        # An invalid body: counted by the throttle, rejected before anything is written.
        status, headers, _ = _request(
            stack, "POST", "/api/v1/auth/register/", {"username": "", "password": "x"}, headers=spoof, source=source
        )
        statuses.append(status)
    assert statuses[:budget] == [400] * budget
    assert statuses[budget:] == [429] * 3
    # Another client address is not affected.
    status, _, _ = _request(
        stack, "POST", "/api/v1/auth/register/", {"username": "", "password": "x"}, source="127.0.0.12"
    )
    assert status == 400


def _restart_web(stack: Any) -> None:
    for name in ("polls.web", "choices.web", "votes.web"):
        stack.restart(name)


def _craft(stack: Any, key: Any, user_id: int, username: str) -> str:
    return make_token(token_claims(user_id, username), private_key=key)


def test_key_rotation_accepts_both_published_keys_and_rejects_a_removed_one(stack, gateway) -> None:
    public_file = Path(stack.run_dir) / "secrets" / "jwt_public.pem"
    original = public_file.read_text()
    current, incoming = _private_key(stack), jwks.generate_private_key()
    username, pair = _register_and_login(gateway, prefix="rot")
    user_id = int(jwt.decode(pair["access"], options={"verify_signature": False})["sub"])
    incoming_token = _craft(stack, incoming, user_id, username)

    def accepted(token: str) -> list[bool]:
        results = []
        for method, path, body in PROTECTED:
            response = gateway.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code < 500, response.text
            results.append(response.status_code != 401)
        return results

    assert accepted(incoming_token) == [False] * len(PROTECTED)  # not yet published
    try:
        public_file.write_text(original + jwks.public_pem(incoming.public_key()))
        _restart_web(stack)
        kids = {key["kid"] for key in gateway.get("/.well-known/jwks.json").json()["keys"]}
        assert kids == {jwks.thumbprint(current.public_key()), jwks.thumbprint(incoming.public_key())}
        assert accepted(incoming_token) == [True] * len(PROTECTED)
        assert accepted(_craft(stack, current, user_id, username)) == [True] * len(PROTECTED)
    finally:
        public_file.write_text(original)
        _restart_web(stack)
    kids = {key["kid"] for key in gateway.get("/.well-known/jwks.json").json()["keys"]}
    assert kids == {jwks.thumbprint(current.public_key())}
    assert accepted(incoming_token) == [False] * len(PROTECTED)
    assert accepted(_craft(stack, current, user_id, username)) == [True] * len(PROTECTED)
