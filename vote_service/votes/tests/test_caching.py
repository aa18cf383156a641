"""Cache-Control on results (servicekit.caching): revalidated while open, final once closed, private with a token."""

from __future__ import annotations

import pytest

from votes.models import PollReplica

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_an_open_polls_results_are_public_but_always_revalidated(anon, open_poll, version):
    response = anon.get(f"/api/{version}/results/{open_poll.id}/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, no-cache"  # a vote must show in the next read
    assert {"Authorization", "Accept"} <= {v.strip() for v in response["Vary"].split(",")}
    if version != "v1":  # v2+ carry an ETag: a client's revalidation costs no body
        unchanged = anon.get(f"/api/{version}/results/{open_poll.id}/", HTTP_IF_NONE_MATCH=response["ETag"])
        assert unchanged.status_code == 304 and unchanged["Cache-Control"] == "public, no-cache"


def test_closed_results_are_immutable_and_a_304_says_so_too(anon, open_poll):
    PollReplica.objects.filter(pk=open_poll.pk).update(status="closed")
    url = f"/api/v2/results/{open_poll.id}/"
    first = anon.get(url)
    assert first["Cache-Control"] == "public, max-age=86400, immutable"
    unchanged = anon.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert unchanged.status_code == 304
    assert unchanged["Cache-Control"] == "public, max-age=86400, immutable"


def test_results_read_with_a_token_are_private(voter, open_poll):
    PollReplica.objects.filter(pk=open_poll.pk).update(status="closed")
    assert voter.get(f"/api/v2/results/{open_poll.id}/")["Cache-Control"] == "private, no-cache"


def test_an_error_gets_no_cache_control(anon, open_poll):
    PollReplica.objects.filter(pk=open_poll.pk).update(status="draft")  # a draft is hidden from anonymous readers
    response = anon.get(f"/api/v2/results/{open_poll.id}/")
    assert response.status_code == 404
    assert "Cache-Control" not in response
