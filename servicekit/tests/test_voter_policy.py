"""servicekit.voter_policy: the canonical form of a policy, and each attribute allowing and denying."""

from __future__ import annotations

import pytest

from servicekit.voter_policy import DAY, normalise, refusal

NOW = 2_000_000_000.0


@pytest.mark.parametrize(
    ("policy", "canonical"),
    [
        (None, None),
        ({}, None),
        ({"roles": ["user", "operator", "user"]}, {"roles": ["operator", "user"]}),
        ({"min_account_age_days": 0}, {"min_account_age_days": 0}),
        ({"roles": ["operator"], "min_account_age_days": 30}, {"roles": ["operator"], "min_account_age_days": 30}),
    ],
)
def test_normalise(policy, canonical) -> None:
    assert normalise(policy) == canonical


@pytest.mark.parametrize(
    "policy",
    [
        [],
        "operators",
        {"roles": []},
        {"roles": "operator"},
        {"roles": ["admin"]},
        {"min_account_age_days": -1},
        {"min_account_age_days": 3651},
        {"min_account_age_days": True},
        {"min_account_age_days": 1.5},
        {"email_domains": ["example.org"]},
    ],
)
def test_malformed_policies_are_refused(policy) -> None:
    with pytest.raises(ValueError):
        normalise(policy)


def test_no_policy_admits_everyone() -> None:
    assert refusal(None, {"roles": ["user"]}) is None
    assert refusal({}, {}) is None


def test_a_role_rule_admits_a_holder_of_one_of_its_roles_only() -> None:
    policy = {"roles": ["operator"]}
    assert refusal(policy, {"roles": ["user", "operator"]}) is None
    assert refusal(policy, {"roles": ["user"]}) == "Only voters with the role operator may vote in this poll."
    assert refusal(policy, {}) is not None


def test_an_account_age_rule_compares_the_joined_claim_with_now() -> None:
    policy = {"min_account_age_days": 30}
    assert refusal(policy, {"joined": NOW - 30 * DAY}, now=NOW) is None
    assert refusal(policy, {"joined": NOW - 30 * DAY + 1}, now=NOW) == (
        "Only accounts at least 30 days old may vote in this poll."
    )
    assert "log in again" in refusal(policy, {}, now=NOW)
    assert refusal(policy, {"joined": True}, now=NOW) is not None


def test_every_attribute_must_hold() -> None:
    policy = {"roles": ["operator"], "min_account_age_days": 1}
    old_operator = {"roles": ["user", "operator"], "joined": NOW - 2 * DAY}
    assert refusal(policy, old_operator, now=NOW) is None
    assert refusal(policy, {**old_operator, "joined": NOW}, now=NOW) is not None
    assert refusal(policy, {**old_operator, "roles": ["user"]}, now=NOW) is not None
