"""The API documentation through the gateway: one docs page, nine schemas, assets served locally."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.stack

SCHEMAS = [(service, version) for service in ("polls", "choices", "votes") for version in ("v1", "v2", "v3")]


def test_docs_page_lists_all_nine_schemas_and_its_assets_load(gateway: Any) -> None:
    page = gateway.get("/api/docs/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    links = set(re.findall(r'href="(/api/schema/[a-z]+/v[123]/)"', page.text))
    assert links == {f"/api/schema/{service}/{version}/" for service, version in SCHEMAS}
    for asset in re.findall(r'(?:src|href)="(/static/polls/[^"]+)"', page.text):
        response = gateway.get(asset)
        assert response.status_code == 200, asset


@pytest.mark.parametrize(("service", "version"), SCHEMAS)
def test_each_schema_is_served_through_the_gateway(gateway: Any, service: str, version: str) -> None:
    response = gateway.get(f"/api/schema/{service}/{version}/")
    assert response.status_code == 200
    document = yaml.safe_load(response.text)
    assert document["info"]["title"] == f"{service} API {version}"
    assert document["paths"] and all(path.startswith(f"/api/{version}/") for path in document["paths"])
    assert "Problem" in document["components"]["schemas"]
