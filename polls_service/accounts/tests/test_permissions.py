"""servicekit.permissions: role checks and object rules on the Principal (what the domain views build on)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.test import RequestFactory
from rest_framework.request import Request

from servicekit.auth import SERVICE_PRINCIPAL, AnonymousPrincipal
from servicekit.permissions import (
    IsAuthenticated,
    IsAuthenticatedOrReadOnly,
    IsOperator,
    IsOwnerOrOperator,
    IsOwnerOrOperatorStrict,
    IsService,
    IsVoter,
    can_manage,
)
from servicekit.principal import Principal

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
    [(ALICE, True), (OPERATOR, True), (ANONYMOUS, False), (SERVICE_PRINCIPAL, False), (None, False)],
)
def test_is_authenticated_needs_a_token_principal(user, expected) -> None:
    assert IsAuthenticated().has_permission(_request("POST", user), VIEW) is expected


def test_read_only_for_anonymous() -> None:
    assert IsAuthenticatedOrReadOnly().has_permission(_request("GET", ANONYMOUS), VIEW)
    assert not IsAuthenticatedOrReadOnly().has_permission(_request("POST", ANONYMOUS), VIEW)
    assert IsAuthenticatedOrReadOnly().has_permission(_request("POST", BOB), VIEW)


def test_is_operator() -> None:
    assert IsOperator().has_permission(_request("POST", OPERATOR), VIEW)
    assert not IsOperator().has_permission(_request("POST", ALICE), VIEW)
    assert not IsOperator().has_permission(_request("POST", SERVICE_PRINCIPAL), VIEW)


@pytest.mark.parametrize(
    ("user", "method", "expected"),
    [
        (ALICE, "PATCH", True),
        (ALICE, "DELETE", True),
        (BOB, "PATCH", False),
        (BOB, "DELETE", False),
        (BOB, "GET", True),
        (OPERATOR, "DELETE", True),
        (ANONYMOUS, "PATCH", False),
    ],
)
def test_owner_or_operator(user, method, expected) -> None:
    poll = SimpleNamespace(owner_id=1)
    assert IsOwnerOrOperator().has_object_permission(_request(method, user), VIEW, poll) is expected


def test_owner_field_can_be_named_by_the_view() -> None:
    choice = SimpleNamespace(poll_owner_id=2)
    view = SimpleNamespace(owner_field="poll_owner_id")
    assert IsOwnerOrOperator().has_object_permission(_request("PATCH", BOB), view, choice)
    assert not IsOwnerOrOperator().has_object_permission(_request("PATCH", ALICE), view, choice)


def test_strict_variant_guards_reads_too() -> None:
    draft = SimpleNamespace(owner_id=1)
    assert not IsOwnerOrOperatorStrict().has_object_permission(_request("GET", BOB), VIEW, draft)
    assert IsOwnerOrOperatorStrict().has_object_permission(_request("GET", OPERATOR), VIEW, draft)


@pytest.mark.parametrize(("user", "expected"), [(ALICE, True), (BOB, False), (OPERATOR, False), (ANONYMOUS, False)])
def test_only_the_voter(user, expected) -> None:
    vote = SimpleNamespace(voter_id=1)
    for method in ("GET", "PATCH", "DELETE"):
        assert IsVoter().has_object_permission(_request(method, user), VIEW, vote) is expected


def test_is_service_only_for_the_service_credential() -> None:
    assert IsService().has_permission(_request("GET", SERVICE_PRINCIPAL), VIEW)
    assert not IsService().has_permission(_request("GET", OPERATOR), VIEW)
    assert not IsService().has_permission(_request("GET", ANONYMOUS), VIEW)


def test_can_manage_compares_ids_as_strings() -> None:
    assert can_manage(ALICE, "1") and can_manage(ALICE, 1) and not can_manage(ALICE, None)
