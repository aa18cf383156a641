"""What the BDD steps share: people talking to the gateway and the state of one scenario."""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

PASSWORD = "journey password 42"
ORDINALS = {"first": 0, "second": 1, "third": 2}
# Users minted by the Platform (a token, no account): ids far above the registered users' sequence.
# Each scenario has its own poll, so the ids only need to differ from each other.
_minted_users = itertools.count(900_000_000)


def minted_user() -> int:
    """A user id nobody has used in this session (for ``Platform.token``)."""
    return next(_minted_users)


class ApiUser:
    """A person who registered and logged in through the gateway (API v2)."""

    def __init__(self, gateway: requests.Session, name: str):
        self.gateway = gateway
        self.name = name
        self.username = f"{name}-{uuid.uuid4().hex[:10]}"
        self.access: str | None = None
        registered = self.call("POST", "/api/v2/auth/register/", {"username": self.username, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        tokens = self.call("POST", "/api/v2/auth/token/", {"username": self.username, "password": PASSWORD})
        assert tokens.status_code == 200, tokens.text
        self.access = tokens.json()["access"]
        me = self.call("GET", "/api/v2/auth/me/")
        assert me.status_code == 200 and me.json()["username"] == self.username, me.text
        self.id = me.json()["id"]

    def call(self, method: str, path: str, body: Any = None, params: dict | None = None) -> requests.Response:
        headers = {"Accept": "application/json"}
        if self.access:
            headers["Authorization"] = f"Bearer {self.access}"
        return self.gateway.request(method, path, json=body, params=params, headers=headers)


@dataclass
class Journey:
    """What the steps of one scenario learned so far."""

    users: dict[str, ApiUser] = field(default_factory=dict)
    owner: ApiUser | None = None  # who drafted the poll (when a person did)
    poll: dict[str, Any] = field(default_factory=dict)  # the poll's latest representation
    choices: list[str] = field(default_factory=list)  # choice ids, in position order
    vote: dict[str, Any] = field(default_factory=dict)
    response: requests.Response | None = None  # the answer the next Then looks at

    def choice(self, ordinal: str) -> str:
        return self.choices[ORDINALS[ordinal]]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def problem_type(response: requests.Response) -> str:
    """The last segment of an RFC 9457 problem's ``type`` (``poll-not-open``)."""
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.text
    return response.json()["type"].rsplit("/", 1)[-1]


def quoted(text: str) -> list[str]:
    """``'"Cafe", "Park" and "Library"'`` -> ``["Cafe", "Park", "Library"]``."""
    return re.findall(r'"([^"]+)"', text)
