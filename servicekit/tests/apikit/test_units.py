"""servicekit.api pure helpers: versions, text fields and their schema pattern, deprecation headers."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from servicekit.api.deprecation import deprecation_headers
from servicekit.api.fields import TextField, has_control_characters, text_pattern
from servicekit.api.hal import action, as_path, link
from servicekit.api.versioning import for_version, successor_path, version_at_least


def test_for_version_falls_back_to_the_latest_earlier_entry() -> None:
    mapping = {"v1": "one", "v3": "three"}
    assert [for_version(mapping, v) for v in ("v1", "v2", "v3")] == ["one", "one", "three"]
    with pytest.raises(KeyError):
        for_version({"v2": "two"}, "v1")


def test_version_comparisons_and_successors() -> None:
    assert version_at_least("v2", "v2") and version_at_least("v3", "v2") and not version_at_least("v1", "v2")
    assert not version_at_least(None, "v1") and not version_at_least("v9", "v1")
    assert successor_path("/api/v1/polls/1/", "v1") == "/api/v2/polls/1/"
    assert successor_path("/api/v3/polls/", "v3") == "/api/v3/polls/"


def test_hal_helpers() -> None:
    assert link("/a/") == {"href": "/a/"}
    assert link("/r/{poll}/", templated=True) == {"href": "/r/{poll}/", "templated": True}
    assert action("/a/", "post") == {"href": "/a/", "method": "POST"}
    assert as_path("http://gateway:8080/api/v3/polls/?cursor=abc") == "/api/v3/polls/?cursor=abc"
    assert as_path(None) is None


def test_deprecation_headers_of_v1_only() -> None:
    headers = deprecation_headers("v1", "/api/v1/polls/")
    assert headers["Deprecation"] == "@1780272000"  # 2026-06-01T00:00:00Z
    assert headers["Sunset"] == "Tue, 01 Jun 2027 00:00:00 GMT"
    assert headers["Link"].startswith('</api/v2/polls/>; rel="successor-version"')
    assert deprecation_headers("v2", "/api/v2/polls/") == {}


def test_deprecation_headers_follow_a_changed_policy(settings) -> None:
    deprecation_headers("v1", "/api/v1/polls/")  # the default policy, now remembered
    settings.SERVICEKIT = {**settings.SERVICEKIT, "API_DEPRECATIONS": {"v2": {"deprecated": "2027-01-01"}}}
    assert deprecation_headers("v1", "/api/v1/polls/") == {}
    headers = deprecation_headers("v2", "/api/v2/polls/")
    assert headers["Deprecation"] == "@1798761600" and "Sunset" not in headers  # 2027-01-01T00:00:00Z


ACCEPTS = st.sampled_from(
    [None, "*/*", "application/json", "application/hal+json", "text/html", "application/*", "*/*; q=0.5",
     "application/json; indent=4", "application/hal+json, application/json;q=0.9", "", "text/html, */*;q=0.1"]
)  # fmt: skip


@given(st.one_of(ACCEPTS, st.text(max_size=30)), st.sampled_from(["json", "hal"]))
def test_header_negotiation_picks_what_drf_picks(accept, first) -> None:
    from rest_framework.exceptions import NotAcceptable
    from rest_framework.negotiation import DefaultContentNegotiation
    from rest_framework.renderers import JSONRenderer
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from servicekit.api.renderers import HALJSONRenderer
    from servicekit.api.views import HeaderContentNegotiation

    renderers = [JSONRenderer()] if first == "json" else [HALJSONRenderer(), JSONRenderer()]
    request = Request(APIRequestFactory().get("/api/v1/x/", **({} if accept is None else {"HTTP_ACCEPT": accept})))

    def pick(negotiation) -> object:
        try:
            renderer, media_type = negotiation.select_renderer(request, renderers)
        except NotAcceptable:
            return "406"
        return type(renderer), media_type

    class DRFByHeader(DefaultContentNegotiation):
        settings = HeaderContentNegotiation.settings

    assert pick(HeaderContentNegotiation()) == pick(DRFByHeader())


class Single(serializers.Serializer):
    text = TextField(min_length=1, max_length=20)


class Multi(serializers.Serializer):
    text = TextField(max_length=20, multiline=True, allow_blank=True)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("  padded  ", "padded"),
        ("ünïcödé ✓", "ünïcödé ✓"),
        ("", None),
        ("   ", None),
        ("nul\x00", None),
        ("del\x7f", None),
        ("c1\x85", None),
        ("tab\tin", None),
        ("x" * 21, None),
        (5, None),
        (True, None),
        (None, None),
    ],
)
def test_single_line_text_field(value, ok) -> None:
    serializer = Single(data={"text": value})
    assert serializer.is_valid() is (ok is not None)
    if ok is not None:
        assert serializer.validated_data["text"] == ok


def test_multiline_text_field_allows_tab_and_newlines_only() -> None:
    assert Multi(data={"text": "a\n\tb\r\n"}).is_valid()
    assert Multi(data={"text": ""}).is_valid()
    assert not Multi(data={"text": "a\x0bb"}).is_valid()
    assert not Multi(data={"text": "a\x00"}).is_valid()


class Plain(serializers.Serializer):
    text = serializers.CharField(max_length=20)


TRICKY = st.sampled_from(["\x00", "\x1f", "\x85", "\xa0", "\u2003", "\u3000", " ", "\t", "\n", "a", "é", "✓"])


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=20) | st.lists(TRICKY, max_size=6).map("".join))
def test_schema_pattern_agrees_with_the_field(value: str) -> None:
    """A schema-driven client (schemathesis) generating from the pattern only sends accepted values.

    Checked under both readings of a pattern (Unicode and ASCII ``re``), as validators differ.
    """
    for flags in (0, re.ASCII):
        matches = re.fullmatch(text_pattern(), value, flags) is not None
        assert matches is Single(data={"text": value}).is_valid(), repr(value)
        plain = re.fullmatch(text_pattern(forbidden="\\x00"), value, flags) is not None
        assert plain is Plain(data={"text": value}).is_valid(), repr(value)
    assert has_control_characters(value) is bool(re.search(r"[\x00-\x1f\x7f-\x9f]", value))
