"""Steps of features/v1_client.feature: a v1 client follows the deprecation links to v3.

What the client knows at the start is a v1 URL; every other URL comes from an answer: the ``Link``
header (RFC 8288: ``successor-version``, ``deprecation``), the documentation page it points to,
and the newest schema that page lists.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
import yaml
from pytest_bdd import parsers, scenarios, then, when

from .helpers import bearer, minted_user

pytestmark = pytest.mark.stack

scenarios("v1_client.feature")


@dataclass
class Client:
    """A client written for v1, and what it read on its way."""

    headers: dict[str, str]
    v1: requests.Response | None = None  # its v1 answer, whose links it follows
    last: requests.Response | None = None
    schema: dict[str, Any] = field(default_factory=dict)  # the newest schema the docs list
    v3_path: str = ""


@pytest.fixture
def client(platform) -> Client:
    return Client(headers=bearer(platform.token(minted_user())))


def documents(template: str, path: str) -> bool:
    """Whether the OpenAPI path ``template`` (``/api/v3/polls/{id}/``) covers ``path``."""
    parts = re.split(r"(\{[^}]+\})", template)
    return re.fullmatch("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts), path) is not None


@when("a v1 client reads the poll")
def read_v1(gateway, journey, client) -> None:
    client.v1 = client.last = gateway.get(f"/api/v1/polls/{journey.poll['id']}/", headers=client.headers)
    assert client.v1.status_code == 200 and client.v1.json()["id"] == journey.poll["id"], client.v1.text


@then("the answer says v1 is deprecated and is served until a later sunset")
def deprecated_until_sunset(client) -> None:
    headers = client.last.headers
    since = re.fullmatch(r"@(\d+)", headers["Deprecation"])  # RFC 9745: @<epoch seconds>
    assert since and int(since.group(1)) <= time.time(), headers["Deprecation"]
    sunset = parsedate_to_datetime(headers["Sunset"]).timestamp()  # RFC 8594: an HTTP date
    assert sunset > int(since.group(1)), (headers["Deprecation"], headers["Sunset"])


@when(parsers.parse('the client follows the "{rel}" link of the v1 answer'))
def follow_link(gateway, client, rel: str) -> None:
    target = client.v1.links[rel]["url"]
    client.last = gateway.get(target, headers=client.headers)
    assert client.last.status_code == 200, (target, client.last.text[:300])


@then("it reads the same poll in v2, which is not deprecated")
def same_poll_in_v2(journey, client) -> None:
    response = client.last
    assert response.url.endswith(f"/api/v2/polls/{journey.poll['id']}/"), response.url
    assert (response.json()["id"], response.json()["question"]) == (journey.poll["id"], client.v1.json()["question"])
    assert "Deprecation" not in response.headers and "Sunset" not in response.headers, response.headers


@then(parsers.parse("the documentation names {version} as the newest polls API"))
def newest_version(gateway, client, version: str) -> None:
    listed = re.findall(r'href="(/api/schema/polls/v(\d+)/)"', client.last.text)
    assert listed, "the documentation page links no polls schema"
    schema_url, newest = max(listed, key=lambda link: int(link[1]))
    assert f"v{newest}" == version, listed
    schema = gateway.get(schema_url)
    assert schema.status_code == 200, schema.text[:300]
    client.schema = yaml.safe_load(schema.text)


@when("the client reads the poll at the path the v3 schema documents")
def read_documented_v3(gateway, client) -> None:
    path = "/api/v3/" + client.v1.url.split("/api/v1/", 1)[1]
    assert any(documents(template, path) for template in client.schema["paths"]), f"{path} is not documented"
    client.v3_path = path
    client.last = gateway.get(path, headers={**client.headers, "Accept": "application/hal+json"})
    assert client.last.status_code == 200, client.last.text[:300]


@then("it reads the same poll as HAL, linked to itself at that path")
def same_poll_as_hal(journey, client) -> None:
    response = client.last
    assert response.headers["Content-Type"].startswith("application/hal+json"), response.headers["Content-Type"]
    assert response.json()["id"] == journey.poll["id"]
    assert response.json()["_links"]["self"]["href"] == client.v3_path
