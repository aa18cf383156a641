"""servicekit.api.middleware: the API's paths skip Django's browser middleware; every other path keeps it."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

seen: dict[str, bool] = {}


def record(request: HttpRequest) -> HttpResponse:
    seen.clear()
    seen.update(
        session=hasattr(request, "session"),
        user=hasattr(request, "user"),
        messages=hasattr(request, "_messages"),
        csrf_cookie="CSRF_COOKIE" in request.META,
    )
    return HttpResponse("ok")


def not_exempt(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("api/v1/record/", record),
    path("internal/record/", record),
    path("admin/kit/record/", record),
    path("api/v1/not-exempt/", not_exempt),
]

pytestmark = pytest.mark.urls(__name__)


def _client_with_csrf_cookie(**kwargs: bool) -> Client:
    client = Client(**kwargs)
    client.cookies[settings.CSRF_COOKIE_NAME] = "a" * 32
    return client


@pytest.mark.parametrize("url", ["/api/v1/record/", "/internal/record/"])
def test_api_paths_skip_sessions_the_csrf_cookie_users_and_messages(url) -> None:
    response = _client_with_csrf_cookie().get(url)
    assert response.status_code == 200
    assert seen == {"session": False, "user": False, "messages": False, "csrf_cookie": False}
    assert "Cookie" not in response.get("Vary", "") and not response.cookies
    assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"


def test_the_admin_paths_keep_them() -> None:
    response = _client_with_csrf_cookie().get("/admin/kit/record/")
    assert response.status_code == 200
    assert seen == {"session": True, "user": True, "messages": True, "csrf_cookie": True}


def test_a_view_that_is_not_csrf_exempt_is_still_protected_on_an_api_path() -> None:
    response = Client(enforce_csrf_checks=True).post("/api/v1/not-exempt/")
    assert response.status_code == 403 and response["Content-Type"].startswith("application/problem+json")


def test_django_still_finds_the_middleware_the_admin_needs() -> None:
    from django.core import checks

    assert not [error for error in checks.run_checks() if error.id in {"admin.E408", "admin.E409", "admin.E410"}]
