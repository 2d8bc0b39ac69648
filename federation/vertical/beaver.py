"""Products of two shared vectors, with a multiplication triple from the helper (Beaver 1991).

The helper shares uniform a, b and c = a * b. The compute parties open
e = x - a and f = y - b (uniform, so they hide x and y) and each computes
its share of x * y = c + e b + f a + e f (e f added by party 0 only). The
product is at twice the scale of its factors; `truncate` brings it back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from federation.vertical.ring import RING


@dataclass(frozen=True)
class TripleShare:
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray


def helper_triple(a: np.ndarray, b: np.ndarray, first: TripleShare) -> tuple[TripleShare, TripleShare]:
    """The helper's triple for uniform a and b: party 0's share is `first`, party 1's the rest."""
    return first, TripleShare(a - first.a, b - first.b, a * b - first.c)


def masked(x: np.ndarray, y: np.ndarray, triple: TripleShare) -> tuple[np.ndarray, np.ndarray]:
    """This party's shares of e = x - a and f = y - b, to be opened."""
    return np.asarray(x - triple.a, dtype=RING), np.asarray(y - triple.b, dtype=RING)


def finish(e: np.ndarray, f: np.ndarray, triple: TripleShare, *, party: int) -> np.ndarray:
    """This party's share of x * y (at the sum of the factors' scales)."""
    out = triple.c + e * triple.b + f * triple.a
    return np.asarray(out + e * f if party == 0 else out, dtype=RING)
