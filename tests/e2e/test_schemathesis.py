"""schemathesis against all nine OpenAPI documents of the running stack, through the gateway.

Every check schemathesis has (``--checks all``: no 5xx, documented status codes, content types,
headers and bodies, invalid input rejected, valid input accepted, auth enforced, 405 for
undocumented methods, ...) over every operation, with a valid access token and seeded data: path
identifiers are pinned to a real poll, choice and vote of the seeded data so the operations reach
real objects (a poll the fuzzing user does not own, a vote that is theirs). The run is bounded
(``--max-examples``, fixed seed, no example database) so it stays fast and reproducible.

Tuning, each for a reason:
- "valid data accepted" may also answer 422: a business rule refusing well-formed input (voting in
  a poll that is not open, an Idempotency-Key reused with another body, a ``closes_at`` in the past);
  registration may also answer 400 (Django's password policy is not expressible in JSON Schema);
- "invalid data rejected" may also answer 413 (a body over 64 KiB is refused before validation);
- TRACE is not probed as an undeclared method: nginx refuses it at the edge (405 without ``Allow``);
- one worker: Hypothesis's lambda introspection (``ast.parse``) is not thread-safe on Python 3.11.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
PASSWORD = "schemathesis password 42"
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10"))
SCHEMAS = [(service, version) for service in ("polls", "choices", "votes") for version in ("v1", "v2", "v3")]


def _login(gateway: Any, prefix: str) -> tuple[str, str]:
    username = f"{prefix}{uuid.uuid4().hex[:10]}"
    assert gateway.post("/api/v1/auth/register/", json={"username": username, "password": PASSWORD}).status_code == 201
    tokens = gateway.post("/api/v1/auth/token/", json={"username": username, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return username, tokens.json()["access"]


class _Gateway(requests.Session):
    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url

    def request(self, method, url, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        kwargs.setdefault("timeout", 15)
        return super().request(method, self.base_url + url, *args, **kwargs)


@pytest.fixture(scope="module")
def seeded(stack: Any) -> dict[str, str]:
    """An open poll of another user with three choices, and a vote of the fuzzing user in it."""
    gateway = _Gateway(stack.gateway_url)
    _, owner = _login(gateway, "seedowner")
    _, fuzzer = _login(gateway, "fuzzer")
    as_owner = {"Authorization": f"Bearer {owner}"}
    poll = gateway.post("/api/v1/polls/", json={"question": "Seeded poll?"}, headers=as_owner).json()
    choices = [
        gateway.post("/api/v1/choices/", json={"poll": poll["id"], "text": text}, headers=as_owner).json()
        for text in ("One", "Two", "Three")
    ]
    opened = gateway.post(f"/api/v1/polls/{poll['id']}/open/", headers=as_owner)
    assert opened.status_code == 200, opened.text
    vote = gateway.post(
        "/api/v1/votes/",
        json={"poll": poll["id"], "choice": choices[0]["id"]},
        headers={"Authorization": f"Bearer {fuzzer}"},
    )
    assert vote.status_code == 201, vote.text
    return {"token": fuzzer, "poll": poll["id"], "choice": choices[1]["id"], "vote": vote.json()["id"]}


@pytest.fixture
def session_ender(stack: Any) -> str:
    """A token of a user of its own for the operations that end every session of their caller."""
    return _login(_Gateway(stack.gateway_url), "ender")[1]


def _config(tmp_path: Path, service: str, seeded: dict[str, str], session_ender: str) -> Path:
    path_id = {"polls": seeded["poll"], "choices": seeded["choice"], "votes": seeded["vote"]}[service]
    config = tmp_path / f"schemathesis-{service}.toml"
    config.write_text(
        f"""
headers = {{ Authorization = "Bearer {seeded["token"]}" }}

[parameters]
"path.id" = "{path_id}"
"path.poll_id" = "{seeded["poll"]}"

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

# Registration also applies Django's password policy (length, similarity, common and numeric
# passwords), which JSON Schema cannot express: a schema-valid password may be refused with 400.
[[operations]]
include-path-regex = "/auth/register/$"

[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "429"]

# Logging out everywhere (or changing the password) ends every session of the caller, the fuzzing
# user's token included: these run as a user of their own, so every other operation stays signed in.
[[operations]]
include-path-regex = "/auth/(logout/all|password)/$"
headers = {{ Authorization = "Bearer {session_ender}" }}
"""
    )
    return config


@pytest.mark.parametrize(("service", "version"), SCHEMAS, ids=[f"{s}-{v}" for s, v in SCHEMAS])
def test_schema_holds_against_the_running_stack(
    stack: Any, seeded: dict[str, str], session_ender: str, tmp_path: Path, service, version
):
    schema_url = f"{stack.gateway_url}/api/schema/{service}/{version}/"
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(_config(tmp_path, service, seeded, session_ender)),
        "--no-color",
        "run",
        schema_url,
        "--url",
        stack.gateway_url,
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261128",
        "--generation-database",
        "none",
        # One worker: Hypothesis describes lambdas with ast.parse, which is not thread-safe on Python 3.11.
        "--workers",
        "1",
        # nginx refuses TRACE itself (405 without Allow) before any service sees it; not an API operation.
        "--exclude-method",
        "TRACE",
        "--request-timeout",
        "15",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    output = result.stdout[-20000:] + result.stderr[-5000:]
    assert result.returncode == 0, f"schemathesis found failures in {service} {version}:\n{output}"
    assert "No issues found" in output or "passed" in output, output
    # The session-ending operations ran as their own user: the fuzzing user is still signed in.
    me = _Gateway(stack.gateway_url).get("/api/v2/auth/me/", headers={"Authorization": f"Bearer {seeded['token']}"})
    assert me.status_code == 200, me.text
