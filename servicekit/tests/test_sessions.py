"""servicekit.sessions: per-user session generations, applied only upwards, checked on every access token."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from servicekit import sessions
from servicekit.models import SessionRevocation
from servicekit.permissions import IsAuthenticated
from servicekit.testing import bearer, make_access_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("test_sessions")]

USER = 4242


@pytest.fixture(autouse=True)
def fresh_copy():
    """No test sees another's revocations through this process's in-memory copy."""
    sessions.forget()
    yield
    sessions.forget()


class Whoami(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"id": request.user.id})


urlpatterns = [path("api/v1/whoami/", Whoami.as_view())]


def token(generation: int | None = None, user: int = USER) -> dict[str, str]:
    extra = {} if generation is None else {"sgen": generation}
    return bearer(make_access_token(user, f"user{user}", ("user",), **extra))


def whoami(headers: dict[str, str]) -> int:
    return Client().get("/api/v1/whoami/", **headers).status_code


def test_a_revocation_refuses_older_generations_only() -> None:
    assert whoami(token()) == 200  # no revocation: a token without sgen is generation 0
    with transaction.atomic():
        assert sessions.revoke(user_id=USER) == 1
    refused = Client().get("/api/v1/whoami/", **token())
    assert refused.status_code == 401
    assert refused["Content-Type"].startswith("application/problem+json")
    assert "revoked" in refused.json()["detail"]
    assert whoami(token(0)) == 401
    assert whoami(token(1)) == 200  # minted after the revocation
    assert whoami(token(0, user=USER + 1)) == 200  # another user
    with transaction.atomic():
        assert sessions.revoke(user_id=USER) == 2
    assert whoami(token(1)) == 401 and whoami(token(2)) == 200


@pytest.mark.parametrize("bad", ["1", -1, 1.5, True, None])
def test_a_malformed_generation_is_refused_once_the_user_was_revoked(bad) -> None:
    sessions.apply(user_id=USER, generation=1)
    claims_value = {"sgen": bad}
    assert sessions.revoked(user_id=USER, claims=claims_value)


def test_apply_only_moves_upwards_and_is_idempotent() -> None:
    assert sessions.apply(user_id=USER, generation=3)
    assert not sessions.apply(user_id=USER, generation=3)  # redelivered
    assert not sessions.apply(user_id=USER, generation=2)  # an older event arriving late
    assert SessionRevocation.objects.get(user_id=USER).generation == 3
    assert sessions.apply(user_id=USER, generation=5)
    assert SessionRevocation.objects.get(user_id=USER).generation == 5
    assert whoami(token(4)) == 401 and whoami(token(5)) == 200


def test_a_process_sees_a_row_written_elsewhere_within_the_refresh_interval(settings) -> None:
    settings.SERVICEKIT = {**settings.SERVICEKIT, "SESSION_REVOCATION_REFRESH_SECONDS": 3600}
    assert whoami(token()) == 200  # loads the (empty) copy
    # Another process of this service applied the event: this one's copy is an hour old by setting.
    SessionRevocation.objects.create(user_id=USER, generation=1)
    assert whoami(token()) == 200
    settings.SERVICEKIT = {**settings.SERVICEKIT, "SESSION_REVOCATION_REFRESH_SECONDS": 0}
    assert whoami(token()) == 401


def test_old_revocations_are_not_held_in_memory() -> None:
    from django.utils import timezone

    SessionRevocation.objects.create(user_id=USER, generation=1, revoked_at=timezone.now() - sessions.RELEVANT_FOR * 2)
    sessions.forget()
    # Every access token of that session has expired by now; the row only matters to the issuer.
    assert not sessions.revoked(user_id=USER, claims={})
    assert sessions.current_generation(user_id=USER) == 1
