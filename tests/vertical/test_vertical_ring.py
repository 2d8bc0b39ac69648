"""federation.vertical.ring, truncate and matvec: the shared arithmetic a vertical step is built from.

Each test plays the two compute parties and the helper in one process and
checks the result against plain float arithmetic, and that what a party
opens to the other is uniform whatever the secret.
"""

from __future__ import annotations

import numpy as np
import pytest

from federation.vertical import matvec, truncate
from federation.vertical.ring import FRACTION, decode, encode, join, split, stream

KEY = bytes(range(32))


def shares(value: np.ndarray, label: bytes) -> tuple[np.ndarray, np.ndarray]:
    return split(value, stream(KEY, label, value.shape))


def test_encoding_round_trips_within_half_a_unit_and_refuses_what_does_not_fit() -> None:
    values = np.random.default_rng(0).uniform(-1e4, 1e4, size=10_000)
    assert np.max(np.abs(decode(encode(values)) - values)) <= 0.5 / 2**FRACTION
    first, second = shares(encode(values), b"x")
    assert np.array_equal(join(first, second), encode(values))
    with pytest.raises(ValueError, match="too large"):
        encode(np.array([2.0**50]))
    with pytest.raises(ValueError, match="not finite"):
        encode(np.array([np.nan]))


def test_streams_differ_by_label_and_key_and_repeat_only_for_the_same_use() -> None:
    one = stream(KEY, b"step 1", (1000,))
    assert np.array_equal(one, stream(KEY, b"step 1", (1000,)))
    assert not np.array_equal(one, stream(KEY, b"step 2", (1000,)))
    assert not np.array_equal(one, stream(bytes(32), b"step 1", (1000,)))


def run_truncation(x: np.ndarray, *, bits: int, shift: int, seed: bytes = b"t") -> tuple[np.ndarray, np.ndarray]:
    """(the truncated value, what party 0 opened to party 1)."""
    value = encode(x, fraction=2 * FRACTION)
    zero, one = shares(value, seed + b"x")
    r = stream(b"h" * 32, seed + b"r", value.shape)
    first = tuple(stream(b"d" * 32, seed + bytes([i]), value.shape) for i in range(3))
    pair0, pair1 = truncate.helper_pair(r, shift, first)  # type: ignore[arg-type]
    opened0 = truncate.masked(zero, pair0, party=0, bits=bits)
    opened = opened0 + truncate.masked(one, pair1, party=1, bits=bits)
    out = truncate.finish(opened, pair0, party=0, bits=bits, shift=shift) + truncate.finish(
        opened, pair1, party=1, bits=bits, shift=shift
    )
    return out, opened0


def test_truncation_is_exact_to_one_unit_over_a_million_values_including_the_edges() -> None:
    rng = np.random.default_rng(1)
    bits = 60  # |x| at scale 2f below 2^59: |x| < 2^19 in real units
    edge = (2.0 ** (bits - 1) - 1) / 2.0 ** (2 * FRACTION)
    x = np.concatenate([rng.uniform(-edge, edge, size=1_000_000), [edge, -edge, 0.0, 1e-9, -1e-9]])
    out, _ = run_truncation(x, bits=bits, shift=FRACTION)
    assert np.max(np.abs(decode(out) - x)) <= 1.0 / 2**FRACTION  # never a wrap, at most one unit in the last place


def test_what_a_party_opens_for_truncation_is_uniform_whatever_the_secret() -> None:
    for secret in (0.0, 1000.0):
        _, opened = run_truncation(np.full(20_000, secret), bits=50, shift=FRACTION, seed=str(secret).encode())
        top = (opened >> np.uint64(63)).astype(np.float64)
        low = (opened & np.uint64(0xFF)).astype(np.float64)
        assert abs(top.mean() - 0.5) < 0.02 and abs(low.mean() - 127.5) < 3  # a constant secret opens as noise


def test_a_gradient_is_computed_on_shares_and_equals_the_plain_product() -> None:
    rng = np.random.default_rng(2)
    n, d = 3000, 3
    x, r = rng.normal(size=(n, d)), rng.uniform(-1, 1, size=n)
    a = stream(b"j" * 32, b"A", (n, d))  # expanded by party j and the helper from their pairwise key
    padded = encode(x) - a  # what j sends to both compute parties
    a0 = stream(b"0" * 32, b"A0", (n, d))
    r0, r1 = shares(encode(r), b"r")
    b = stream(b"D" * 32, b"b", (n,))
    step0, step1 = matvec.helper_step(a, b, matvec.StepShare(stream(b"q" * 32, b"b0", (n,)), stream(b"q" * 32, b"ab", (d,))))
    opened0 = matvec.masked(r0, step0)
    opened = opened0 + matvec.masked(r1, step1)
    g = matvec.finish(padded, a0, opened, step0, party=0) + matvec.finish(padded, a - a0, opened, step1, party=1)
    assert np.allclose(decode(g, fraction=2 * FRACTION), x.T @ r, atol=n * 2.0**-FRACTION)
    assert not np.array_equal(opened0, r0) and abs((opened0 >> np.uint64(63)).mean() - 0.5) < 0.05
