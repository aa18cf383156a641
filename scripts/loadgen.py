"""Load helpers shared by ``make bench`` (scripts/bench.sh) and the fault tests (tests/chaos).

Everything goes through the gateway like a client would; only the access tokens are minted here
with the stack's own signing key (``RUN_DIR/secrets/jwt_private.pem``), so thousands of *distinct*
users can vote without registering thousands of accounts (password hashing would dominate the run)::

    from scripts.loadgen import Platform
    platform = Platform(gateway_url="http://127.0.0.1:8080", run_dir=Path(".run"))
    polls = platform.create_polls(20, choices=3)          # opened, with their choice ids
    platform.wait_warm(polls)                             # vote_service has heard of every poll and choice
    token = platform.token(100_001)                       # a user the platform has never seen
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "servicekit") not in sys.path:
    sys.path.insert(0, str(REPO / "servicekit"))


@dataclass
class Poll:
    id: str
    choices: list[str] = field(default_factory=list)


class Platform:
    """A running platform reached through its gateway."""

    def __init__(self, *, gateway_url: str, run_dir: Path, owner_id: int = 1, token_lifetime: int = 4 * 3600):
        from servicekit import jwks

        self.gateway_url = gateway_url.rstrip("/")
        self.run_dir = Path(run_dir)
        self.key = jwks.load_private_key((self.run_dir / "secrets" / "jwt_private.pem").read_text())
        self.token_lifetime = token_lifetime
        self.owner_id = owner_id
        self.session = requests.Session()

    def token(self, user_id: int, roles: tuple[str, ...] = ("user",)) -> str:
        """An access token for user ``user_id`` signed with the platform's key."""
        from servicekit.testing import make_access_token

        now = int(time.time())
        return make_access_token(user_id, f"load{user_id}", roles, private_key=self.key, exp=now + self.token_lifetime)

    def service_token(self) -> str:
        return (self.run_dir / "secrets" / "service_token").read_text().strip()

    def _call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: dict | None = None,
        expect: tuple[int, ...] = (200, 201),
    ) -> dict:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in range(20):
            response = self.session.request(method, self.gateway_url + path, json=body, headers=headers, timeout=15)
            # Setup runs right after start-up: a replica may still be on its way (503 + Retry-After).
            if response.status_code in (502, 503, 504) and attempt < 19:
                time.sleep(0.5)
                continue
            break
        if response.status_code not in expect:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else {}

    def create_polls(self, count: int, *, choices: int = 3, prefix: str = "Load poll") -> list[Poll]:
        """``count`` open polls of the owner, each with ``choices`` choices."""
        owner = self.token(self.owner_id)
        polls = []
        for i in range(count):
            poll = self._call("POST", "/api/v1/polls/", token=owner, body={"question": f"{prefix} {i} {time.time()}"})
            ids = []
            for c in range(choices):
                choice = self._call(
                    "POST",
                    "/api/v1/choices/",
                    token=owner,
                    body={"poll": poll["id"], "text": f"Option {c}", "position": c},
                )
                ids.append(choice["id"])
            self._call("POST", f"/api/v1/polls/{poll['id']}/open/", token=owner, body={})
            polls.append(Poll(poll["id"], ids))
        return polls

    def results(self, poll_id: str) -> dict | None:
        response = self.session.get(f"{self.gateway_url}/api/v1/results/{poll_id}/", timeout=15)
        return response.json() if response.status_code == 200 else None

    def wait_warm(self, polls: list[Poll], timeout: float = 60.0) -> None:
        """Until vote_service's results list every choice of every poll (its replicas are warm)."""
        deadline = time.monotonic() + timeout
        pending = list(polls)
        while pending and time.monotonic() < deadline:
            poll = pending[0]
            body = self.results(poll.id)
            if body and {c["choice"] for c in body.get("choices", [])} >= set(poll.choices):
                pending.pop(0)
                continue
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"{len(pending)} poll(s) not known to vote_service after {timeout} s")


def write_fixture(path: Path, polls: list[Poll]) -> None:
    path.write_text(json.dumps([{"id": p.id, "choices": p.choices} for p in polls]))
