"""``Memo``: a process-local dict of answers that are cheap to recompute, emptied at once when full.

The hot path keeps a few such memos (verified access tokens, verified service tokens, settled voter
policies): a hit saves work that a miss simply does again. Emptying the whole dict when it reaches its
size bounds the memory a stream of distinct keys can take, and costs a hit nothing, where an LRU would
reorder on every hit. Reads are plain dict reads; ``remember`` is the only way in::

    _verified = Memo(4096)
    cached = _verified.get(token)
    ...
    _verified.remember(token, claims)

Like a dict, it is safe to share between threads: a race costs one extra computation, never a wrong value.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(dict[K, V]):
    """A dict holding at most ``size`` entries: the one that would exceed it empties it first."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a memo holds at least one entry")
        super().__init__()
        self.size = size

    def remember(self, key: K, value: V) -> V:
        """Keep ``value`` under ``key`` and return it."""
        if key not in self and len(self) >= self.size:
            self.clear()
        self[key] = value
        return value
