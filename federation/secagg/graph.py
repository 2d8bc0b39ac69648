"""Who shares secrets and masks with whom: the complete graph or a SecAgg+ graph.

Bell et al. 2020 replace the complete graph of Bonawitz et al. with a sparse
random graph of degree O(log n): each node masks with, and holds shares for,
only its neighbours, so cost grows as n log n instead of n^2. We use a
Harary graph (a ring where each node links to k/2 on each side) over a
permutation drawn from a public seed, so every party computes the same graph.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np


def neighbours(n: int, *, degree: int | None, seed: bytes) -> list[frozenset[int]]:
    """Neighbour sets (0-based indices, excluding self); `degree=None` is the complete graph."""
    if n < 1:
        raise ValueError("a graph needs at least one node")
    if degree is None or degree >= n - 1:
        return [frozenset(j for j in range(n) if j != i) for i in range(n)]
    if degree < 2 or degree % 2:
        raise ValueError(f"a SecAgg+ degree must be even and >= 2, got {degree}")
    # A permutation by sorting hashes: the same at every party, whatever numpy version it runs.
    order = np.array(
        sorted(range(n), key=lambda i: hashlib.sha256(b"federation/secagg/v1/graph" + seed + i.to_bytes(4, "big")).digest())
    )
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    result = []
    for i in range(n):
        p = int(position[i])
        result.append(frozenset(int(order[(p + step) % n]) for step in range(-degree // 2, degree // 2 + 1) if step))
    return result


def default_degree(n: int) -> int:
    """An even degree of about 2 log2 n, the SecAgg+ regime for large cohorts."""
    if n - 1 <= 2:
        return n - 1  # the complete graph
    degree = 2 * math.ceil(math.log2(n))
    return min(degree, n - 1 if (n - 1) % 2 == 0 else n - 2)
