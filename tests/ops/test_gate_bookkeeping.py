"""The bookkeeping of the gate proofs (``scripts/loadgen.py``): what the ledger must hold after the clients'
operations, and what ``close_race_problems`` calls a broken gate. Pure logic on hand-made ``Op`` records.

The case that made this file: the gateway resends a DELETE whose instance was killed mid-request to another
instance; when the first had committed the retraction, the second answers 404. The client was told its vote
is gone, and it is: that is no lost vote, and a 404 for it after the close is no broken gate.
"""

from __future__ import annotations

import pytest

from scripts.loadgen import CloseRace, Op, Poll, close_race_problems, expected_ledger, gone_votes

POLL = "poll-1"
A, B = "choice-a", "choice-b"


def op(kind: str, user: int, sent: float, status: int | str, vote: str | None = None, choice: str | None = None) -> Op:
    return Op(kind, user, POLL, sent, sent + 0.01, status, vote=vote, choice=choice)


def race(ops: list[Op], *, close_sent: float = 10.0, closed_at: float = 11.0) -> CloseRace:
    """A finished race over ``ops``: one voter thread, one warm-up success needed."""
    finished = CloseRace(None, Poll(POLL, [A, B]), first_user=1, voters=1, changers=0, warmup=1, owner_token="t")
    finished.ops = ops
    finished.close_sent, finished.closed_at = close_sent, closed_at
    finished.close_ops = [op("close", 0, close_sent, 200)]
    return finished


def test_a_retraction_answered_404_leaves_no_vote_expected():
    ops = [op("cast", 7, 1.0, 201, vote="v1", choice=A), op("retract", 7, 2.0, 404, vote="v1")]
    assert expected_ledger(ops) == ({}, set())
    assert gone_votes(ops) == {"v1"}


def test_a_change_answered_404_leaves_no_vote_expected():
    ops = [op("cast", 7, 1.0, 201, vote="v1", choice=A), op("change", 7, 2.0, 404, vote="v1", choice=B)]
    assert expected_ledger(ops) == ({}, set())


def test_a_refused_change_keeps_the_vote_as_it_was():
    ops = [op("cast", 7, 1.0, 201, vote="v1", choice=A), op("change", 7, 12.0, 422, vote="v1", choice=B)]
    assert expected_ledger(ops) == ({"v1": A}, set())


def test_a_resent_retraction_found_gone_is_no_broken_gate():
    """Cast, retraction resent by the gateway (404), then after the close a 404 for that gone vote."""
    ops = [
        op("cast", 7, 1.0, 201, vote="v1", choice=A),
        op("retract", 7, 10.5, 404, vote="v1"),
        op("change", 7, 12.0, 404, vote="v1", choice=B),
        op("cast", 8, 12.0, 422, choice=A),
    ]
    assert close_race_problems(race(ops), ledger={}) == []


@pytest.mark.parametrize(
    ("sent", "status", "also"),
    [
        (2.0, 204, None),  # an acknowledged retraction that did not happen
        (12.0, 404, "expected 422"),  # a 404 that lied: also a refusal after the close that is not 422
    ],
)
def test_a_vote_the_client_was_told_is_gone_but_is_in_the_ledger_is_reported(sent, status, also):
    ops = [
        op("cast", 7, 1.0, 201, vote="v1", choice=A),
        op("retract", 7, sent, status, vote="v1"),
        op("cast", 8, 12.0, 422, choice=A),
    ]
    problems = close_race_problems(race(ops), ledger={"v1": A})
    assert any("told are gone" in p for p in problems), problems
    assert also is None or any(also in p for p in problems), problems


def test_an_acknowledged_vote_missing_from_the_ledger_is_reported():
    ops = [op("cast", 7, 1.0, 201, vote="v1", choice=A), op("cast", 8, 12.0, 422, choice=A)]
    problems = close_race_problems(race(ops), ledger={})
    assert problems == ["1 acknowledged votes not (or not so) in the ledger: ['v1']"]


def test_a_vote_accepted_after_the_close_is_reported():
    ops = [op("cast", 7, 1.0, 201, vote="v1", choice=A), op("cast", 8, 12.0, 201, vote="v2", choice=A)]
    problems = close_race_problems(race(ops), ledger={"v1": A, "v2": A})
    assert any("accepted after the close" in p for p in problems), problems
