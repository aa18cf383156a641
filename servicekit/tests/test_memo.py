"""servicekit.memo.Memo: at most ``size`` entries, emptied when one more would not fit."""

from __future__ import annotations

import threading

import pytest

from servicekit.memo import Memo


def test_remember_keeps_and_returns_the_value() -> None:
    memo: Memo[str, int] = Memo(3)
    assert memo.remember("a", 1) == 1
    assert memo.get("a") == 1 and "b" not in memo


def test_a_new_key_beyond_the_size_empties_it_first() -> None:
    memo: Memo[int, int] = Memo(3)
    for key in range(3):
        memo.remember(key, key)
    assert len(memo) == 3
    memo.remember(3, 3)
    assert dict(memo) == {3: 3}


def test_replacing_a_held_key_when_full_keeps_the_others() -> None:
    memo: Memo[int, str] = Memo(2)
    memo.remember(1, "one")
    memo.remember(2, "two")
    memo.remember(2, "TWO")
    assert dict(memo) == {1: "one", 2: "TWO"}


def test_it_never_holds_more_than_its_size_under_threads() -> None:
    memo: Memo[tuple[int, int], int] = Memo(50)
    sizes: list[int] = []

    def fill(thread: int) -> None:
        for n in range(2000):
            memo.remember((thread, n), n)
            sizes.append(len(memo))

    threads = [threading.Thread(target=fill, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # A race may let a few threads each add one past a check: never more than one per thread.
    assert max(sizes) <= 50 + len(threads)


def test_a_memo_holds_at_least_one_entry() -> None:
    with pytest.raises(ValueError):
        Memo(0)
