"""servicekit.permissions: role checks and object rules on the Principal (what the domain views build on)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.test import RequestFactory
from rest_framework.request import Request

from servicekit.auth import AnonymousPrincipal
from servicekit.permissions import (
    IsAuthenticated,
    IsAuthenticatedOrReadOnly,
    IsService,
    can_manage,
)
from servicekit.principal import Principal
from servicekit.service_identity import ServicePrincipal

ALICE = Principal(id=1, username="alice")
BOB = Principal(id=2, username="bob")
OPERATOR = Principal(id=3, username="ops", roles=frozenset({"user", "operator"}))
ANONYMOUS = AnonymousPrincipal()
VIEW = SimpleNamespace()


def _request(method: str, user) -> Request:
    request = Request(RequestFactory().generic(method, "/"))
    request.user = user
    return request


@pytest.mark.parametrize(
    ("user", "expected"),
    [(ALICE, True), (OPERATOR, True), (ANONYMOUS, False), (ServicePrincipal("votes"), False), (None, False)],
)
def test_is_authenticated_needs_a_token_principal(user, expected) -> None:
    assert IsAuthenticated().has_permission(_request("POST", user), VIEW) is expected


def test_read_only_for_anonymous() -> None:
    assert IsAuthenticatedOrReadOnly().has_permission(_request("GET", ANONYMOUS), VIEW)
    assert not IsAuthenticatedOrReadOnly().has_permission(_request("POST", ANONYMOUS), VIEW)
    assert IsAuthenticatedOrReadOnly().has_permission(_request("POST", BOB), VIEW)


def test_is_service_only_for_the_services_the_view_names() -> None:
    view = SimpleNamespace(callers=frozenset({"choices", "votes"}))
    assert IsService().has_permission(_request("GET", ServicePrincipal("votes")), view)
    refused = IsService()
    assert not refused.has_permission(_request("GET", ServicePrincipal("polls")), view)
    assert refused.message == "The polls service may not call this endpoint."
    assert not IsService().has_permission(_request("GET", ServicePrincipal("votes")), SimpleNamespace())
    assert not IsService().has_permission(_request("GET", OPERATOR), view)
    assert not IsService().has_permission(_request("GET", ANONYMOUS), view)


def test_can_manage_compares_ids_as_strings() -> None:
    assert can_manage(ALICE, "1") and can_manage(ALICE, 1) and not can_manage(ALICE, None)
