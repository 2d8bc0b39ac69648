"""The helper's correlated randomness, drawn in one process: the in-process reference run and its tests.

In a networked run the helper party and each compute party expand party
0's shares from their pairwise key, so only party 1's corrections travel;
here one seeded generator plays all of that, which changes who computes
what but not a single value's distribution.
"""

from __future__ import annotations

import numpy as np

from federation.vertical.beaver import TripleShare, helper_triple
from federation.vertical.truncate import TruncationShare, helper_pair


class SeededHelper:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.triples = 0
        self.truncations = 0

    def uniform(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.rng.integers(0, 2**64, size=shape, dtype=np.uint64)

    def triple(self, shape: tuple[int, ...]) -> tuple[TripleShare, TripleShare]:
        self.triples += 1
        u = self.uniform
        return helper_triple(u(shape), u(shape), TripleShare(u(shape), u(shape), u(shape)))

    def truncation(self, shape: tuple[int, ...], shift: int) -> tuple[TruncationShare, TruncationShare]:
        self.truncations += 1
        u = self.uniform
        return helper_pair(u(shape), shift, (u(shape), u(shape), u(shape)))
