"""X^T r where party j holds X in clear and r is shared between the two compute parties.

The gradient of party j's weights is X_j^T r, r = sigmoid(score) - label
per firm. Nobody may see r, nor X_j outside j. With a helper D (a third
party that holds neither): j and D expand the same uniform matrix A from
their pairwise key, and j sends E = X - A (a one-time pad) once to both
compute parties, which also hold shares of A. At each step D shares a fresh
uniform vector b and A^T b; the compute parties open d = r - b (uniform, so
it hides r) and each computes its share of

    X^T r = (E + A)^T (d + b) = E^T d + E^T [b] + [A]^T d + [A^T b]

(E^T d, public to both, is added by party 0 only). Products are at scale
2f; no truncation is needed while N * max|x| * max|r| stays below 2^(63-2f).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from federation.vertical.ring import RING


@dataclass(frozen=True)
class StepShare:
    """A compute party's share of one step's helper vector b and of A^T b."""

    b: np.ndarray
    a_t_b: np.ndarray


def helper_step(a: np.ndarray, b: np.ndarray, first: StepShare) -> tuple[StepShare, StepShare]:
    """The helper's correlation for one step: party 0's share is `first`, party 1's the rest."""
    product = a.T @ b
    return first, StepShare(b - first.b, product - first.a_t_b)


def masked(r_share: np.ndarray, step: StepShare) -> np.ndarray:
    """This party's share of d = r - b, to be opened to the other compute party."""
    return np.asarray(r_share - step.b, dtype=RING)


def finish(e: np.ndarray, a_share: np.ndarray, opened: np.ndarray, step: StepShare, *, party: int) -> np.ndarray:
    """This party's share of X^T r (scale 2f), from the padded matrix E, its share of A and the opened d."""
    out = e.T @ step.b + a_share.T @ opened + step.a_t_b
    return np.asarray(out + e.T @ opened if party == 0 else out, dtype=RING)
