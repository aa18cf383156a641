"""Who may vote: the owner sets a poll's voter policy while drafting; it travels with the poll's events and
internal read, and v3's ``vote`` link is shown only to callers the policy admits."""

from __future__ import annotations

import time
import uuid

import pytest
from rest_framework.test import APIClient

from polls.models import Poll
from polls.tests.factories import PollFactory
from servicekit.testing import bearer, make_access_token, service_credentials
from servicekit.voter_policy import DAY

pytestmark = pytest.mark.django_db

OPERATORS_ONLY = {"roles": ["operator"]}


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_the_owner_sets_a_policy_when_creating_and_editing_a_draft(owner, outbox, version) -> None:
    created = owner.post(f"/api/{version}/polls/", {"question": "Who?", "voter_policy": OPERATORS_ONLY})
    assert created.status_code == 201, created.content
    assert created.json()["voter_policy"] == OPERATORS_ONLY
    poll_id = created.json()["id"]
    edited = owner.patch(f"/api/{version}/polls/{poll_id}/", {"voter_policy": {"min_account_age_days": 7}})
    assert edited.status_code == 200 and edited.json()["voter_policy"] == {"min_account_age_days": 7}
    assert [e["data"]["voter_policy"] for e in outbox() if e["aggregate_id"] == poll_id] == [
        OPERATORS_ONLY,
        {"min_account_age_days": 7},
    ]
    cleared = owner.patch(f"/api/{version}/polls/{poll_id}/", {"voter_policy": None})
    assert cleared.json()["voter_policy"] is None
    assert Poll.objects.get(pk=poll_id).voter_policy is None


def test_an_empty_policy_is_no_policy_and_roles_are_canonical(owner) -> None:
    assert owner.post("/api/v2/polls/", {"question": "?", "voter_policy": {}}).json()["voter_policy"] is None
    for roles, canonical in ((["user", "operator"], ["operator", "user"]), (["user", "user"], ["user"])):
        body = owner.post("/api/v2/polls/", {"question": "?", "voter_policy": {"roles": roles}})
        assert body.json()["voter_policy"] == {"roles": canonical}


@pytest.mark.parametrize(
    "policy",
    [{"roles": []}, {"roles": ["admin"]}, {"min_account_age_days": -1}, {"min_account_age_days": 9999}, "all"],
)
def test_a_malformed_policy_is_a_400_and_changes_nothing(owner, policy) -> None:
    response = owner.post("/api/v2/polls/", {"question": "?", "voter_policy": policy})
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    assert any(field.startswith("voter_policy") for field in response.json()["errors"])
    assert not Poll.objects.exists()


def test_the_policy_is_fixed_once_the_poll_is_open(owner) -> None:
    poll = PollFactory(owner_id=owner.id, opened=True)
    response = owner.patch(f"/api/v2/polls/{poll.id}/", {"voter_policy": OPERATORS_ONLY})
    assert response.status_code == 409
    assert Poll.objects.get(pk=poll.id).voter_policy is None


def test_the_internal_read_carries_the_policy() -> None:
    poll = PollFactory(voter_policy=OPERATORS_ONLY)
    response = APIClient().get(f"/internal/polls/{poll.id}/", **service_credentials("votes"))
    assert response.status_code == 200 and response.json()["voter_policy"] == OPERATORS_ONLY


def v3_links(token: str, poll: Poll) -> dict:
    return APIClient().get(f"/api/v3/polls/{poll.id}/", **bearer(token)).json()["_links"]


def test_the_vote_link_is_only_for_callers_the_policy_admits() -> None:
    operators = PollFactory(opened=True, voter_policy=OPERATORS_ONLY)
    assert "vote" not in v3_links(make_access_token(801, "u", ("user",)), operators)
    assert "vote" in v3_links(make_access_token(802, "op", ("user", "operator")), operators)
    seasoned = PollFactory(opened=True, voter_policy={"min_account_age_days": 30})
    assert "vote" not in v3_links(make_access_token(803, "new", joined=int(time.time())), seasoned)
    assert "vote" in v3_links(make_access_token(804, "old", joined=int(time.time() - 31 * DAY)), seasoned)
    assert "vote" in v3_links(make_access_token(805, "any"), PollFactory(opened=True))


def test_tokens_carry_when_the_account_was_created(client, django_user_model) -> None:
    import jwt

    credentials = {"username": "ageing", "password": f"{uuid.uuid4()} ageing"}
    user = django_user_model.objects.create_user(**credentials)
    response = client.post("/api/v1/auth/token/", credentials, "application/json")
    claims = jwt.decode(response.json()["access"], options={"verify_signature": False})
    assert claims["joined"] == int(user.date_joined.timestamp())
