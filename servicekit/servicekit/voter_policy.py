"""Who may vote in a poll: an attribute-based policy, evaluated statelessly against the voter's access token.

A poll's owner sets it while drafting (polls_service validates it with ``normalise``); it travels with the
poll's events and internal reads; vote_service evaluates it on every vote (``refusal``), and polls_service
shows v3's ``vote`` link only to callers it admits. Attributes, each optional (all must hold)::

    {"roles": ["operator"],              # the token's roles hold at least one of these
     "min_account_age_days": 30}          # the account was created at least this many days ago (claim "joined")

``None`` (or ``{}``) admits every signed-in user. The attributes come from the verified token alone: no
service reads a user table to decide. A token without ``joined`` (minted before the claim existed, at most
15 minutes ago) fails an account-age rule.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from servicekit.principal import ROLE_OPERATOR, ROLE_USER

ROLES = (ROLE_USER, ROLE_OPERATOR)
MAX_ACCOUNT_AGE_DAYS = 3650
DAY = 86_400


def normalise(policy: Any) -> dict[str, Any] | None:
    """The canonical form of ``policy`` (``None`` when it restricts nothing); ``ValueError`` when malformed."""
    if policy is None or policy == {}:
        return None
    if not isinstance(policy, Mapping):
        raise ValueError("A voter policy is an object.")
    unknown = sorted(set(policy) - {"roles", "min_account_age_days"})
    if unknown:
        raise ValueError(f"Unknown voter policy attributes: {', '.join(unknown)}.")
    canonical: dict[str, Any] = {}
    if "roles" in policy:
        roles = policy["roles"]
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and r in ROLES for r in roles):
            raise ValueError(f"roles is a non-empty list of {', '.join(ROLES)}.")
        canonical["roles"] = sorted(set(roles))
    if "min_account_age_days" in policy:
        days = policy["min_account_age_days"]
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_ACCOUNT_AGE_DAYS:
            raise ValueError(f"min_account_age_days is a whole number from 0 to {MAX_ACCOUNT_AGE_DAYS}.")
        canonical["min_account_age_days"] = days
    return canonical or None


def refusal(policy: Mapping[str, Any] | None, claims: Mapping[str, Any], *, now: float | None = None) -> str | None:
    """Why the holder of ``claims`` may not vote under ``policy``, or None when they may."""
    if not policy:
        return None
    roles = policy.get("roles")
    if roles and not set(roles) & set(claims.get("roles") or ()):
        return f"Only voters with the role {' or '.join(roles)} may vote in this poll."
    days = policy.get("min_account_age_days")
    if days:
        joined = claims.get("joined")
        if isinstance(joined, bool) or not isinstance(joined, int | float):
            return f"Only accounts at least {days} days old may vote in this poll; log in again to show yours."
        if (time.time() if now is None else now) - joined < days * DAY:
            return f"Only accounts at least {days} days old may vote in this poll."
    return None
