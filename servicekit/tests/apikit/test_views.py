"""servicekit.api in a request: versions, pagination, HAL, ETag, idempotency, deprecation, limits, schema."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from apikit.views import CALLS
from servicekit.api import idempotency

pytestmark = [pytest.mark.django_db, pytest.mark.urls("apikit.views")]


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


def post(client: Client, url: str, body: object, **extra: str):
    import json

    return client.post(url, data=json.dumps(body), content_type="application/json", **extra)


def test_pagination_per_version(client) -> None:
    for i in range(3):
        Group.objects.create(name=f"g{i}")
    v1 = client.get("/api/v1/groups/?page_size=2").json()
    assert set(v1) == {"count", "next", "previous", "results"} and v1["count"] == 3 and len(v1["results"]) == 2
    v2 = client.get("/api/v2/groups/?page_size=2").json()
    assert set(v2) == {"next", "previous", "results"} and "cursor=" in v2["next"]
    v3 = client.get("/api/v3/groups/?page_size=2")
    assert v3["Content-Type"] == "application/hal+json"
    body = v3.json()
    assert body["count"] == 3 and [g["name"] for g in body["_embedded"]["groups"]] == ["g2", "g1"]
    assert body["_links"]["next"]["href"].startswith("/api/v3/groups/?")


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "1.5", "null", "٣"])
def test_invalid_page_size_is_400(client, version, page_size) -> None:
    response = client.get(f"/api/{version}/groups/", {"page_size": page_size})
    assert response.status_code == 400 and response.json()["errors"] == {
        "page_size": ["A positive integer is required."]
    }


def test_filters_only_from_v2_and_v1_keeps_the_view_ordering(client) -> None:
    Group.objects.create(name="a")
    Group.objects.create(name="b")
    assert [g["name"] for g in client.get("/api/v1/groups/?ordering=name").json()["results"]] == ["b", "a"]
    assert [g["name"] for g in client.get("/api/v2/groups/?ordering=name").json()["results"]] == ["a", "b"]
    assert [g["name"] for g in client.get("/api/v2/groups/").json()["results"]] == ["b", "a"]


def test_view_versions_and_action_versions(client) -> None:
    assert client.get("/api/v3/only3/").json() == {"version": "v3"}
    assert client.get("/api/v1/only3/").status_code == 404
    group = Group.objects.create(name="quiet")
    assert client.post(f"/api/v1/groups/{group.id}/shout/").status_code == 405
    assert client.post(f"/api/v2/groups/{group.id}/shout/").json() == {"name": "QUIET"}
    assert "POST" not in client.options(f"/api/v1/groups/{group.id}/shout/")["Allow"]
    assert "POST" in client.options(f"/api/v2/groups/{group.id}/shout/")["Allow"]


def test_body_limit_is_413(client, settings) -> None:
    settings.SERVICEKIT = {**settings.SERVICEKIT, "MAX_BODY_BYTES": 100}
    response = post(client, "/api/v2/groups/", {"name": "x" * 200})
    assert response.status_code == 413 and response["Content-Type"] == "application/problem+json"


def test_etag_and_304(client) -> None:
    group = Group.objects.create(name="e")
    first = client.get(f"/api/v2/groups/{group.id}/")
    assert client.get(f"/api/v2/groups/{group.id}/", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    assert client.head(f"/api/v2/groups/{group.id}/", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    assert "ETag" not in client.get(f"/api/v1/groups/{group.id}/")


def test_idempotent_replay_conflict_and_reuse(client) -> None:
    key = uuid.uuid4().hex
    before = CALLS["create"]
    first = post(client, "/api/v2/groups/", {"name": "once"}, HTTP_IDEMPOTENCY_KEY=key)
    second = post(client, "/api/v2/groups/", {"name": "once"}, HTTP_IDEMPOTENCY_KEY=key)
    assert (first.status_code, second.status_code) == (201, 201) and second.content == first.content
    assert second["Location"] == first["Location"] and CALLS["create"] == before + 1
    assert post(client, "/api/v2/groups/", {"name": "other"}, HTTP_IDEMPOTENCY_KEY=key).status_code == 422


def test_a_key_still_in_progress_is_409(client) -> None:
    key = uuid.uuid4().hex
    body = b'{"name": "slow"}'
    # Another worker holds the key right now (same caller, path and body).
    idempotency.claim(key=key, scope="anonymous", method="POST", path="/api/v2/groups/", body=body)
    response = client.post("/api/v2/groups/", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 409 and response["Retry-After"] == "1"
    assert not Group.objects.filter(name="slow").exists()


def test_a_crash_releases_the_key(client) -> None:
    key = uuid.uuid4().hex
    before = CALLS["crash"]
    assert post(client, "/api/v2/groups/crash/", {"name": "x"}, HTTP_IDEMPOTENCY_KEY=key).status_code == 500
    assert post(client, "/api/v2/groups/crash/", {"name": "x"}, HTTP_IDEMPOTENCY_KEY=key).status_code == 500
    assert CALLS["crash"] == before + 2  # executed again: a failure is never replayed


def test_deprecation_headers_only_on_v1(client) -> None:
    v1 = client.get("/api/v1/groups/")
    assert v1["Deprecation"] and v1["Sunset"] and 'rel="successor-version"' in v1["Link"]
    assert "Deprecation" not in client.get("/api/v3/groups/")


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_schema_documents_errors_headers_and_versions(client, version) -> None:
    schema = client.get(f"/api/schema/kit/{version}/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    assert ("/api/v3/only3/" in paths) is (version == "v3")
    assert (f"/api/{version}/groups/{{id}}/shout/" in paths) is (version != "v1")
    create = paths[f"/api/{version}/groups/"]["post"]
    assert {"201", "400", "401", "403", "409", "413", "415", "429"} <= set(create["responses"])
    assert ("422" in create["responses"]) is (version != "v1")
    params = {p["name"] for p in create.get("parameters", [])}
    assert ("Idempotency-Key" in params) is (version != "v1")
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/GroupInput")
    pattern = schema["components"]["schemas"]["GroupInput"]["properties"]["name"]["pattern"]
    assert pattern.startswith("^[^\\x00-\\x1f")
    read = paths[f"/api/{version}/groups/{{id}}/"]["get"]
    assert ("304" in read["responses"]) is (version != "v1")
    assert read.get("deprecated", False) is (version == "v1")
    if version != "v1":
        loud = paths[f"/api/{version}/groups/{{id}}/shout/"]["post"]["responses"]["409"]
        assert loud["description"] == "Too loud already."
        assert set(loud["content"]) == {"application/problem+json"}
    media = set(read["responses"]["200"]["content"])
    assert media == ({"application/hal+json", "application/json"} if version == "v3" else {"application/json"})
