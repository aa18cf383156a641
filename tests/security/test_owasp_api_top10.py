"""The OWASP API Security Top 10 (2023), one or more tests per risk, through the gateway of the session's stack.

Each test is an attack a client could make against the public surface, and asserts what the platform
answers and that nothing changed. Identity details (the forged-token matrix, key rotation, login budgets)
have their own suite in tests/e2e/test_auth_gateway.py; this file names the risk each defence answers.

=====  ==========================================  =====================================================
API1   Broken object level authorization           another user's poll, choice and vote: not readable
                                                   (drafts), not changeable, not deletable
API2   Broken authentication                       wrong audience / expired / unsigned tokens at every
                                                   service; login answers do not tell which part was wrong
API3   Broken object property level authorization  owner, status, version, id in bodies change nothing;
                                                   no answer carries a password hash or e-mail of another
API4   Unrestricted resource consumption           bodies over 64 KiB, page sizes capped, over-long text
API5   Broken function level authorization         admin and /internal/ closed to users, operator-only
                                                   transitions refused
API6   Unrestricted access to sensitive flows      one vote per person per poll, even 20 at once
API7   Server side request forgery                 tokens naming key URLs (jku, x5u) never make the
                                                   platform fetch them
API8   Security misconfiguration                   security headers, no CORS grant to strangers, no debug
                                                   pages, no stack traces, TRACE refused, no version banner
API9   Improper inventory management               v1 announces its sunset; unknown versions do not exist
API10  Unsafe consumption of APIs                  a malformed event from an upstream is dead-lettered
                                                   and changes nothing downstream
=====  ==========================================  =====================================================
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from scripts.loadgen import Platform, database_url, publish, wait_for
from scripts.platform_stack import Stack
from servicekit import jwks
from servicekit.testing import assert_unauthorized, make_token, token_claims
from servicekit.testing_upstream import FakeUpstream
from tests.bdd.helpers import PASSWORD, ApiUser, minted_user

pytestmark = pytest.mark.stack

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def platform(stack: Stack) -> Platform:
    return Platform(gateway_url=stack.gateway_url, run_dir=stack.run_dir, votes_url=stack.service_url("votes"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def is_problem(response: requests.Response, status: int) -> bool:
    return response.status_code == status and response.headers.get("Content-Type", "").startswith(PROBLEM)


def draft_of(gateway: requests.Session, token: str) -> dict[str, Any]:
    created = gateway.post(
        "/api/v2/polls/", json={"question": f"Secret draft {uuid.uuid4().hex[:8]}"}, headers=bearer(token)
    )
    assert created.status_code == 201, created.text
    return created.json()


def open_poll_of(gateway: requests.Session, token: str) -> tuple[dict[str, Any], list[str]]:
    poll = draft_of(gateway, token)
    choices = []
    for position in range(2):
        choice = gateway.post(
            "/api/v2/choices/",
            json={"poll": poll["id"], "text": f"Option {position}", "position": position},
            headers=bearer(token),
        )
        assert choice.status_code == 201, choice.text
        choices.append(choice.json()["id"])
    opened = gateway.post(f"/api/v2/polls/{poll['id']}/open/", json={}, headers=bearer(token))
    assert opened.status_code == 200, opened.text
    return opened.json(), choices


def cast(gateway: requests.Session, token: str, poll_id: str, choice_id: str) -> requests.Response:
    # The poll's replica may still be on its way to vote_service right after the open (a 503 with Retry-After).
    deadline = time.monotonic() + 10
    while True:
        response = gateway.post("/api/v2/votes/", json={"poll": poll_id, "choice": choice_id}, headers=bearer(token))
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


# --- API1: broken object level authorization --------------------------------------------------------------


def test_api1_another_users_objects_cannot_be_read_changed_or_deleted(gateway, platform) -> None:
    owner, intruder = platform.token(minted_user()), platform.token(minted_user())
    draft = draft_of(gateway, owner)
    poll, choices = open_poll_of(gateway, owner)
    voter = platform.token(minted_user())
    vote = cast(gateway, voter, poll["id"], choices[0])
    assert vote.status_code == 201, vote.text

    # A draft is its owner's: to anyone else it does not exist (404, not 403: no oracle of ids).
    assert is_problem(gateway.get(f"/api/v2/polls/{draft['id']}/", headers=bearer(intruder)), 404)
    assert is_problem(gateway.get(f"/api/v2/results/{draft['id']}/", headers=bearer(intruder)), 404)
    attacks = [
        ("PATCH", f"/api/v2/polls/{draft['id']}/", {"question": "Hijacked"}),
        ("DELETE", f"/api/v2/polls/{draft['id']}/", None),
        ("POST", f"/api/v2/polls/{poll['id']}/close/", {}),
        ("DELETE", f"/api/v2/polls/{poll['id']}/", None),
        ("POST", "/api/v2/choices/", {"poll": draft["id"], "text": "Planted", "position": 5}),
        ("PATCH", f"/api/v2/votes/{vote.json()['id']}/", {"choice": choices[1]}),
        ("DELETE", f"/api/v2/votes/{vote.json()['id']}/", None),
    ]
    for method, path, body in attacks:
        answer = gateway.request(method, path, json=body, headers=bearer(intruder))
        assert answer.status_code in (403, 404, 422), (method, path, answer.status_code, answer.text)
        assert answer.headers["Content-Type"].startswith(PROBLEM), (method, path)

    # Nothing changed: the draft, the open poll and the vote are as their owners left them.
    assert gateway.get(f"/api/v2/polls/{draft['id']}/", headers=bearer(owner)).json()["question"] == draft["question"]
    assert gateway.get(f"/api/v2/polls/{poll['id']}/", headers=bearer(owner)).json()["status"] == "open"
    mine = gateway.get(f"/api/v2/votes/{vote.json()['id']}/", headers=bearer(voter))
    assert mine.status_code == 200 and mine.json()["choice"] == choices[0], mine.text
    choices_now = gateway.get("/api/v2/choices/", params={"poll": draft["id"]}, headers=bearer(owner)).json()
    assert choices_now["results"] == [], choices_now


# --- API2: broken authentication ----------------------------------------------------------------------------


def _private_key(stack: Stack) -> Any:
    return jwks.load_private_key((Path(stack.run_dir) / "secrets" / "jwt_private.pem").read_text())


def test_api2_tokens_for_another_audience_expired_or_unsigned_are_refused_everywhere(gateway, stack) -> None:
    key = _private_key(stack)
    user = minted_user()
    now = int(time.time())
    tokens = {
        "another audience": make_token(token_claims(user, f"u{user}", audience="some-other-api"), private_key=key),
        "expired a minute ago": make_token(
            {**token_claims(user, f"u{user}"), "iat": now - 960, "exp": now - 60}, private_key=key
        ),
        "alg none": ".".join(
            part.rstrip("=")
            for part in (
                _b64({"alg": "none", "typ": "JWT"}),
                _b64(token_claims(user, f"u{user}")),
                "",
            )
        ),
    }
    for name, token in tokens.items():
        for path in ("/api/v2/auth/me/", "/api/v2/choices/?mine=1", "/api/v2/votes/"):
            assert_unauthorized(gateway.get(path, headers=bearer(token)), f"{name} at {path}")


def _b64(value: dict | str) -> str:
    import base64

    raw = value if isinstance(value, str) else json.dumps(value)
    return base64.urlsafe_b64encode(raw.encode()).decode()


def test_api2_login_does_not_say_whether_the_username_or_the_password_was_wrong(gateway) -> None:
    user = ApiUser(gateway, "api2")
    wrong_password = gateway.post("/api/v2/auth/token/", json={"username": user.username, "password": "not it at all"})
    unknown_user = gateway.post(
        "/api/v2/auth/token/", json={"username": f"nobody{uuid.uuid4().hex[:8]}", "password": "x" * 12}
    )
    assert wrong_password.status_code == unknown_user.status_code == 401
    strip = ("instance", "request_id", "trace_id")
    assert {k: v for k, v in wrong_password.json().items() if k not in strip} == {
        k: v for k, v in unknown_user.json().items() if k not in strip
    }


# --- API3: broken object property level authorization ------------------------------------------------------


def test_api3_privileged_properties_in_bodies_change_nothing(gateway, platform) -> None:
    owner_id, other_id = minted_user(), minted_user()
    owner = platform.token(owner_id)
    planted = {"owner": other_id, "owner_id": other_id, "status": "open", "version": 99, "id": str(uuid.uuid4())}
    created = gateway.post("/api/v2/polls/", json={"question": "Mass assignment?", **planted}, headers=bearer(owner))
    assert created.status_code == 201, created.text
    poll = created.json()
    assert (poll["owner"], poll["status"]) == (owner_id, "draft"), poll
    assert poll["id"] != planted["id"]

    patched = gateway.patch(
        f"/api/v2/polls/{poll['id']}/", json={"question": "Still mine?", **planted}, headers=bearer(owner)
    )
    assert patched.status_code == 200, patched.text
    after = gateway.get(f"/api/v2/polls/{poll['id']}/", headers=bearer(owner)).json()
    assert (after["owner"], after["status"], after["question"]) == (owner_id, "draft", "Still mine?"), after


def test_api3_account_answers_expose_no_secret_property(gateway) -> None:
    user = ApiUser(gateway, "api3")
    me = user.call("GET", "/api/v2/auth/me/").json()
    assert not {"password", "is_superuser", "is_staff", "last_login"} & set(me), me
    sneaky = gateway.post(
        "/api/v2/auth/register/",
        json={"username": f"api3{uuid.uuid4().hex[:8]}", "password": PASSWORD, "roles": ["operator"]},
    )
    assert is_problem(sneaky, 400), sneaky.text


# --- API4: unrestricted resource consumption ---------------------------------------------------------------


def test_api4_large_bodies_long_text_and_huge_pages_are_bounded(gateway, platform) -> None:
    owner = platform.token(minted_user())
    too_big = gateway.post(
        "/api/v2/polls/",
        data=json.dumps({"question": "x" * 70_000}),
        headers={**bearer(owner), "Content-Type": "application/json"},
    )
    assert is_problem(too_big, 413), too_big.status_code
    long_question = gateway.post("/api/v2/polls/", json={"question": "q" * 5_000}, headers=bearer(owner))
    assert long_question.status_code in (400, 422) and long_question.headers["Content-Type"].startswith(PROBLEM)
    page = gateway.get("/api/v2/polls/", params={"page_size": 100_000})
    assert page.status_code == 200 and len(page.json()["results"]) <= 100, len(page.json()["results"])


# --- API5: broken function level authorization -------------------------------------------------------------


def test_api5_admin_and_internal_functions_are_closed_to_users(gateway, stack, platform) -> None:
    user = platform.token(minted_user())
    for path in ("/internal/polls/", f"/internal/votes/ledger/{uuid.uuid4()}/"):
        for headers in ({}, bearer(user), {"Authorization": f"Service {platform.service_token('choices', 'votes')}"}):
            assert is_problem(gateway.get(path, headers=headers), 404), (path, headers.keys())
    # The admin sites answer a user's token with their login page, never with data.
    for service in ("polls", "choices", "votes"):
        admin = gateway.get(f"/admin/{service}/", headers=bearer(user), allow_redirects=False)
        assert admin.status_code == 302 and "/login/" in admin.headers["Location"], (service, admin.status_code)
    # A service's own port refuses an internal call made with a user's token.
    internal = requests.get(
        f"{stack.service_url('polls')}/internal/polls/{uuid.uuid4()}/", headers=bearer(user), timeout=10
    )
    assert internal.status_code in (401, 403), internal.status_code


# --- API6: unrestricted access to sensitive business flows --------------------------------------------------


def test_api6_one_person_gets_one_vote_even_with_twenty_concurrent_attempts(gateway, platform, stack) -> None:
    owner = platform.token(minted_user())
    poll, choices = open_poll_of(gateway, owner)
    voter = platform.token(minted_user())
    assert cast(gateway, voter, poll["id"], choices[0]).status_code == 201
    barrier = threading.Barrier(20)

    def again(index: int) -> int:
        with requests.Session() as session:
            barrier.wait()
            body = {"poll": poll["id"], "choice": choices[index % 2]}
            return session.post(
                f"{stack.gateway_url}/api/v2/votes/", json=body, headers=bearer(voter), timeout=15
            ).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(again, range(20)))
    assert set(statuses) <= {409, 429}, statuses
    assert len(platform.ledger(poll["id"])) == 1
    results = gateway.get(f"/api/v2/results/{poll['id']}/").json()
    assert sum(choice["votes"] for choice in results["choices"]) == 1, results


# --- API7: server side request forgery ---------------------------------------------------------------------


def test_api7_key_urls_in_a_token_header_are_never_fetched(gateway, stack) -> None:
    with FakeUpstream() as key_server:  # a real listener that records every request it gets
        key_server.respond("/jwks.json", {"keys": []})
        url = f"{key_server.url}/jwks.json"
        key = _private_key(stack)
        user = minted_user()
        for header in ({"jku": url}, {"x5u": url}):
            token = make_token(token_claims(user, f"u{user}"), headers=header, private_key=key)
            for path in ("/api/v2/auth/me/", "/api/v2/votes/", "/api/v2/choices/?mine=1"):
                assert_unauthorized(gateway.get(path, headers=bearer(token)), f"{header} at {path}")
        assert key_server.requests == [], f"the platform fetched {[r.path for r in key_server.requests]}"


# --- API8: security misconfiguration -----------------------------------------------------------------------


def test_api8_headers_cors_errors_and_methods_are_locked_down(gateway) -> None:
    answer = gateway.get("/api/v2/polls/", headers={"Origin": "https://evil.example"})
    assert answer.status_code == 200
    assert answer.headers.get("X-Content-Type-Options") == "nosniff"
    assert "Access-Control-Allow-Origin" not in answer.headers, "a foreign origin is granted CORS"
    assert answer.headers.get("Server", "nginx") == "nginx", "the gateway tells its version"

    preflight = gateway.options(
        "/api/v2/votes/",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers

    for path in ("/api/v2/polls/not-a-uuid/", "/api/v2/nothing-here/"):
        missing = gateway.get(path)
        assert is_problem(missing, 404), (path, missing.status_code)
        assert "Traceback" not in missing.text and "DEBUG" not in missing.text

    broken = gateway.post(
        "/api/v2/auth/token/",
        data="{not json",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    assert is_problem(broken, 400), broken.status_code
    assert "Traceback" not in broken.text and 'File "' not in broken.text

    # TRACE would echo the request (its cookies and Authorization) back to a script: never served.
    for method in ("TRACE", "TRACK"):
        traced = gateway.request(method, "/api/v2/polls/", headers={"X-Echo-Probe": "secret-echo-42"})
        assert traced.status_code in (400, 401, 405, 501), (method, traced.status_code)
        assert "secret-echo-42" not in traced.text, f"{method} echoed the request"


# --- API9: improper inventory management -------------------------------------------------------------------


def test_api9_superseded_versions_announce_their_sunset_and_unknown_ones_do_not_exist(gateway) -> None:
    v1 = gateway.get("/api/v1/polls/")
    assert v1.status_code == 200
    assert v1.headers.get("Deprecation", "").startswith("@") and v1.headers.get("Sunset"), v1.headers
    current = gateway.get("/api/v3/polls/")
    assert current.status_code == 200 and "Sunset" not in current.headers
    for path in ("/api/v4/polls/", "/api/v0/polls/", "/api/beta/polls/", "/api/polls/"):
        assert is_problem(gateway.get(path), 404), path


# --- API10: unsafe consumption of APIs ---------------------------------------------------------------------


def test_api10_a_malformed_upstream_event_is_dead_lettered_and_changes_nothing(gateway, platform, stack) -> None:
    owner_id = minted_user()
    owner = platform.token(owner_id)
    poll, _ = open_poll_of(gateway, owner)
    before = wait_for("vote_service's replica open", lambda: _open_replica(stack, poll["id"]))
    # A poll.closed that claims a far newer version but breaks the event's schema (owner is not a user id,
    # an unknown status, a 100 KiB field): a consumer that trusted it would seal the poll.
    hostile = {
        "id": str(uuid.uuid4()),
        "type": "poll.closed",
        "occurred_at": "2026-12-02T00:00:00.000000Z",
        "producer": "polls_service",
        "aggregate_id": poll["id"],
        "version": 10_000,
        "data": {"id": poll["id"], "owner_id": "root; DROP TABLE", "status": "exploded", "question": "x" * 100_000},
    }
    publish(stack, [hostile])
    wait_for(
        "the hostile event dead-lettered by vote_service", lambda: _dead_lettered(stack, hostile["id"]), timeout=20
    )
    assert _replica_status(stack, poll["id"]) == before, "a malformed event changed vote_service's replica"
    voter = platform.token(minted_user())
    choices = gateway.get("/api/v2/choices/", params={"poll": poll["id"]}).json()["results"]
    assert cast(gateway, voter, poll["id"], choices[0]["id"]).status_code == 201, "the poll no longer takes votes"


def _replica_status(stack: Stack, poll_id: str) -> tuple[str, int] | None:
    with psycopg.connect(database_url(stack, "VOTE_DATABASE_URL")) as conn:
        return conn.execute("SELECT status, version FROM votes_pollreplica WHERE id = %s", [poll_id]).fetchone()


def _open_replica(stack: Stack, poll_id: str) -> tuple[str, int] | None:
    state = _replica_status(stack, poll_id)
    return state if state and state[0] == "open" else None


def _dead_lettered(stack: Stack, event_id: str) -> bool:
    with psycopg.connect(database_url(stack, "VOTE_DATABASE_URL")) as conn:
        row = conn.execute("SELECT 1 FROM servicekit_dead_letter WHERE event_id = %s", [event_id]).fetchone()
    return row is not None
