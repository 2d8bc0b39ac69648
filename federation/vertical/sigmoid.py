"""The logistic function on shares: a Chebyshev series of degree 63 on a bounded score.

Every party bounds its partial score (|X_j w_j| <= B_j, public budgets
summing below 16), so the joint score z lies in [-16, 16] and t = z / 16 in
[-1, 1]; parties input t directly. On that interval

    sigmoid(16 t) = 1/2 + sum over odd k <= 63 of c_k T_k(t)

to within 2.5e-6 (the series converges geometrically because sigmoid is
analytic in a strip around the real axis). The T_k stay in [-1, 1], which
suits fixed point, and are built in six levels of parallel products,
T_{m+n} = 2 T_m T_n - T_{m-n}, so the whole evaluation takes 6 product
rounds and 6 truncation rounds. No comparison is needed, and the loss is
the logistic loss itself, not a Taylor surrogate of it.
"""

from __future__ import annotations

from functools import cache
from typing import Protocol

import numpy as np
from numpy.polynomial import chebyshev

from federation.vertical import beaver, truncate
from federation.vertical.beaver import TripleShare
from federation.vertical.ring import FRACTION, RING, encode
from federation.vertical.truncate import TruncationShare

Pair = tuple[np.ndarray, np.ndarray]  # the two compute parties' shares of one value
TRUNCATION_BITS = 44  # every value truncated here is below 2^43 at scale 2f (|value| < 8)

BOUND = 16.0  # |joint score| the budgets guarantee
DEGREE = 63


@cache
def coefficients() -> np.ndarray:
    """c_0 .. c_63 of the Chebyshev interpolant of sigmoid(16 t) (even ones are 0 but for c_0 = 1/2)."""
    c = chebyshev.chebinterpolate(lambda t: 1.0 / (1.0 + np.exp(-BOUND * t)), DEGREE)  # type: ignore[type-var]  # numpy stubs want a scalar function
    c[2::2] = 0.0  # sigmoid - 1/2 is odd: the even terms are rounding noise
    c[0] = 0.5
    return np.asarray(c)


def schedule() -> list[list[tuple[int, int, int]]]:
    """Levels of (k, m, n) with T_k = 2 T_m T_n - T_{m-n}, m >= n; level L builds T_{2^(L-1)+1} .. T_{2^L}."""
    levels = []
    top = 1
    while top < DEGREE:
        level = [(top + j, top, j) for j in range(1, top + 1) if top + j <= DEGREE]
        levels.append(level)
        top *= 2
    return levels


def plain(t: np.ndarray) -> np.ndarray:
    """The same series in float, for the reference run that a shared run must match."""
    return np.asarray(chebyshev.chebval(np.asarray(t, dtype=np.float64), coefficients()))


class Helper(Protocol):
    """Correlated randomness for the two compute parties (in a run: the helper party, through pairwise streams)."""

    def uniform(self, shape: tuple[int, ...]) -> np.ndarray: ...

    def triple(self, shape: tuple[int, ...]) -> tuple[TripleShare, TripleShare]: ...

    def truncation(self, shape: tuple[int, ...], shift: int) -> tuple[TruncationShare, TruncationShare]: ...


def _product(x: Pair, y: Pair, helper: Helper) -> Pair:
    """x * y at the sum of the scales; one opening."""
    triples = helper.triple(x[0].shape)
    opened = [beaver.masked(x[p], y[p], triples[p]) for p in (0, 1)]
    e, f = opened[0][0] + opened[1][0], opened[0][1] + opened[1][1]
    return beaver.finish(e, f, triples[0], party=0), beaver.finish(e, f, triples[1], party=1)


def _truncated(x: Pair, helper: Helper, *, bits: int = TRUNCATION_BITS) -> Pair:
    """x / 2^f; one opening."""
    pairs = helper.truncation(x[0].shape, FRACTION)
    opened = truncate.masked(x[0], pairs[0], party=0, bits=bits) + truncate.masked(x[1], pairs[1], party=1, bits=bits)
    return (
        truncate.finish(opened, pairs[0], party=0, bits=bits, shift=FRACTION),
        truncate.finish(opened, pairs[1], party=1, bits=bits, shift=FRACTION),
    )


def chebyshev_terms(t: Pair, helper: Helper) -> dict[int, Pair]:
    """Shares of T_0 .. T_63 at t (scale f), built level by level: 6 product and 6 truncation openings."""
    lift = np.uint64(1 << FRACTION)
    terms: dict[int, Pair] = {0: (encode(np.ones(t[0].shape)), np.zeros(t[0].shape, dtype=RING)), 1: t}
    for level in schedule():
        products = [_product(terms[m], terms[n], helper) for _, m, n in level]
        for (k, m, n), product in zip(level, products, strict=True):
            lower = terms[m - n]
            doubled = (np.uint64(2) * product[0] - lower[0] * lift, np.uint64(2) * product[1] - lower[1] * lift)
            terms[k] = _truncated(doubled, helper)
    return terms


def series_share(terms: dict[int, np.ndarray], c: np.ndarray) -> np.ndarray:
    """One party's share of sum_k c_k T_k at scale 2f, untruncated (public coefficients: no opening)."""
    total = np.zeros(terms[0].shape, dtype=RING)
    for k in np.flatnonzero(c):
        total = total + encode(np.array(c[k])) * terms[int(k)]
    return np.asarray(total, dtype=RING)


def series(terms: dict[int, Pair], c: np.ndarray) -> Pair:
    """Both compute parties' shares of sum_k c_k T_k at scale 2f."""
    return series_share({k: v[0] for k, v in terms.items()}, c), series_share({k: v[1] for k, v in terms.items()}, c)


def shared(t: Pair, helper: Helper) -> Pair:
    """Shares of sigmoid(16 t) at scale f from shares of t at scale f (both compute parties in lockstep)."""
    return _truncated(series(chebyshev_terms(t, helper), coefficients()), helper)


@cache
def softplus_coefficients() -> np.ndarray:
    """Chebyshev coefficients of softplus(16 t) / 16 = log(1 + e^(16 t)) / 16 on [-1, 1]."""
    c = chebyshev.chebinterpolate(lambda t: np.logaddexp(0.0, BOUND * t) / BOUND, DEGREE)  # type: ignore[type-var]  # numpy stubs want a scalar function
    return np.asarray(c)


def shared_log_loss(t: Pair, labels: Pair, rows: np.ndarray, helper: Helper) -> tuple[Pair, Pair]:
    """(shares of sigmoid(16 t) at scale f, shares of the summed log-loss over `rows` at scale 2f).

    The log-loss of a firm is softplus(z) - y z with z = 16 t; both series
    reuse the same T_k, so the loss costs one more product (y t) and no
    truncation: only its sum, a scalar, is ever opened, to the label party.
    """
    terms = chebyshev_terms(t, helper)
    probability = _truncated(series(terms, coefficients()), helper)
    softplus = series(terms, softplus_coefficients())
    label_score = _product(labels, t, helper)
    mask = rows.astype(np.uint64)
    factor = np.uint64(int(BOUND))
    loss = tuple(np.asarray(np.sum(factor * (softplus[p] - label_score[p]) * mask, dtype=RING), dtype=RING) for p in (0, 1))
    return probability, (loss[0], loss[1])


def plain_log_loss(t: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> float:
    """The same series loss in float, summed over `rows`."""
    softplus = chebyshev.chebval(np.asarray(t, dtype=np.float64), softplus_coefficients()) * BOUND
    return float(np.sum((softplus - labels * BOUND * t) * rows))
