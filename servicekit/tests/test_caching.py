"""Cache-Control on public reads (servicekit.caching): anonymous, with credentials, final, errors, writes."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from servicekit.caching import PRIVATE, PUBLIC_IMMUTABLE, PUBLIC_SHORT, PublicReadMixin, patch_read_cache

factory = RequestFactory()


def vary(response: HttpResponse) -> set[str]:
    return {part.strip() for part in response["Vary"].split(",")}


@pytest.mark.parametrize("status", [200, 304])
def test_an_anonymous_read_is_public_for_a_second(status: int) -> None:
    response = HttpResponse(status=status)
    patch_read_cache(factory.get("/api/v2/results/x/"), response)
    assert response["Cache-Control"] == PUBLIC_SHORT
    assert {"Authorization", "Accept"} <= vary(response)


@pytest.mark.parametrize(
    "request_kwargs",
    [{"HTTP_AUTHORIZATION": "Bearer abc"}, {"HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}=s3ss10n"}],
)
def test_a_read_with_credentials_is_private_even_when_the_view_says_immutable(request_kwargs: dict) -> None:
    response = HttpResponse()
    patch_read_cache(factory.get("/api/v2/results/x/", **request_kwargs), response, public=PUBLIC_IMMUTABLE)
    assert response["Cache-Control"] == PRIVATE


@pytest.mark.parametrize(("method", "status"), [("get", 404), ("get", 503), ("post", 200), ("delete", 200)])
def test_errors_and_writes_get_no_cache_control(method: str, status: int) -> None:
    response = HttpResponse(status=status)
    patch_read_cache(getattr(factory, method)("/api/v2/results/x/"), response)
    assert "Cache-Control" not in response


class FinalWhenAsked(PublicReadMixin, APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def get(self, request, final: str = ""):
        if request.query_params.get("final"):
            self.read_cache_control = PUBLIC_IMMUTABLE
        return Response({"ok": True})


def test_the_mixin_lets_a_handler_choose_per_request() -> None:
    view = FinalWhenAsked.as_view()
    final = view(factory.get("/api/v2/results/x/", {"final": "1"}))
    assert final["Cache-Control"] == PUBLIC_IMMUTABLE
    later = view(factory.get("/api/v2/results/x/"))  # a fresh view instance: back to the default
    assert later["Cache-Control"] == PUBLIC_SHORT
