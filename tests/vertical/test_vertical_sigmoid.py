"""federation.vertical.beaver and sigmoid: the logistic function evaluated on shares, against the float one."""

from __future__ import annotations

import numpy as np

from federation.vertical import beaver
from federation.vertical.helper import SeededHelper
from federation.vertical.ring import FRACTION, decode, encode
from federation.vertical.sigmoid import DEGREE, coefficients, plain, schedule, shared


def test_a_product_of_shares_is_the_product() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-8, 8, 5000), rng.uniform(-8, 8, 5000)
    helper = SeededHelper(1)
    xs, ys = helper.uniform(x.shape), helper.uniform(y.shape)
    x_pair, y_pair = (xs, encode(x) - xs), (ys, encode(y) - ys)
    triples = helper.triple(x.shape)
    opened = [beaver.masked(x_pair[p], y_pair[p], triples[p]) for p in (0, 1)]
    e, f = opened[0][0] + opened[1][0], opened[0][1] + opened[1][1]
    product = beaver.finish(e, f, triples[0], party=0) + beaver.finish(e, f, triples[1], party=1)
    assert np.allclose(decode(product, fraction=2 * FRACTION), x * y, atol=1e-4)


def test_the_series_is_within_3e_6_of_the_logistic_function_on_the_whole_bounded_range() -> None:
    t = np.linspace(-1, 1, 100_001)
    assert np.max(np.abs(plain(t) - 1 / (1 + np.exp(-16 * t)))) < 3e-6
    assert np.all(coefficients()[2::2] == 0) and len(schedule()) == 6
    built = {0, 1} | {k for level in schedule() for k, _, _ in level}
    assert built == set(range(DEGREE + 1))  # every T_k up to the degree, each from terms of earlier levels


def test_sigmoid_on_shares_matches_the_float_one_to_1e_5_including_the_ends() -> None:
    t = np.concatenate([np.linspace(-1, 1, 4001), [-1.0, 1.0, 0.0]])
    helper = SeededHelper(2)
    first = helper.uniform(t.shape)
    out = shared((first, encode(t) - first), helper)
    got = decode(out[0] + out[1])
    assert np.max(np.abs(got - 1 / (1 + np.exp(-16 * t)))) < 1e-5
    assert helper.triples == DEGREE - 1 and helper.truncations == DEGREE  # 62 products, each truncated, plus the sum
    assert abs(float(np.mean(decode(out[0]) > 0)) - 0.5) < 0.05  # a party's share of the result is noise
