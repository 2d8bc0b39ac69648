"""Fixed-point encoding: round trip, no overflow of the cohort's uint32 sum, unbiased stochastic rounding."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.secagg.quantize import Quantizer

FLOAT32_REL = 2.0**-23  # decode returns float32: one ulp relative to the value


class AlwaysUp:
    """An adversarial rounding source: every fractional value is rounded up (random() is 0)."""

    def random(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape)


class AlwaysDown:
    """Every fractional value is rounded down (random() is 1, never below the fraction)."""

    def random(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.ones(shape)


def as_int(encoded: np.ndarray) -> np.ndarray:
    return encoded.view(np.int32).astype(np.int64)


@settings(max_examples=40, deadline=None)
@given(
    clip=st.floats(1e-3, 1e3),
    cohort=st.integers(1, 1_000_000),
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(1, 200),
)
def test_round_trip_is_within_one_step_per_element(clip: float, cohort: int, seed: int, length: int) -> None:
    q = Quantizer(clip, cohort)
    rng = np.random.default_rng(seed)
    values = rng.uniform(-1.5 * clip, 1.5 * clip, length)  # some beyond the clip
    encoded = q.encode(values, rng)
    assert encoded.dtype == np.uint32 and encoded.shape == values.shape
    expected = np.clip(values, -clip, clip)
    error = np.abs(q.decode(encoded).astype(np.float64) - expected)
    assert np.all(error <= 1 / q.scale + np.abs(expected) * FLOAT32_REL)


def test_decode_keeps_the_documented_precision_for_small_cohorts() -> None:
    q = Quantizer(1.0, 2)
    decoded = q.decode(q.encode(np.array([0.1]), np.random.default_rng(0)))
    assert abs(float(decoded[0]) - 0.1) <= 1 / q.scale


@pytest.mark.parametrize("cohort", [1, 2, 3, 7, 128, 1000, 65_537, 1_000_000])
@pytest.mark.parametrize(("sign", "rounding"), [(1, AlwaysUp()), (-1, AlwaysDown())], ids=["plus-clip-up", "minus-clip-down"])
def test_cohort_sum_at_the_clip_never_overflows(cohort: int, sign: int, rounding: AlwaysUp | AlwaysDown) -> None:
    """The worst case: every input at +clip (or -clip), every rounding away from zero."""
    clip = 2.5
    q = Quantizer(clip, cohort)
    encoded = q.encode(np.full(cohort, sign * clip), rounding)  # type: ignore[arg-type]
    total = encoded.sum(dtype=np.uint32)  # wraps modulo 2^32, as the masked sum does
    as_signed = int(np.array([total], dtype=np.uint32).view(np.int32)[0])
    assert np.sign(as_signed) == sign  # did not wrap into the other half
    assert abs(as_signed) <= 2**31 - 1
    decoded = float(q.decode(np.array([total], dtype=np.uint32))[0])
    exact = sign * cohort * clip
    assert abs(decoded - exact) <= cohort / q.scale + abs(exact) * FLOAT32_REL


@settings(max_examples=40, deadline=None)
@given(cohort=st.integers(1, 64), clip=st.floats(1e-2, 1e2), seed=st.integers(0, 2**32 - 1), length=st.integers(1, 50))
def test_cohort_sum_of_values_at_plus_or_minus_clip_decodes_to_the_float_sum(
    cohort: int, clip: float, seed: int, length: int
) -> None:
    q = Quantizer(clip, cohort)
    rng = np.random.default_rng(seed)
    values = rng.choice([-clip, clip], size=(cohort, length)) * rng.choice([1.0, 1.0, 3.0], size=(cohort, length))
    total = np.zeros(length, dtype=np.uint32)
    for row in values:
        np.add(total, q.encode(row, rng), out=total)
    exact = np.clip(values, -clip, clip).sum(axis=0)
    error = np.abs(q.decode(total).astype(np.float64) - exact)
    assert np.all(error <= cohort / q.scale + np.abs(exact) * FLOAT32_REL)


@pytest.mark.parametrize("sign", [1, -1])
def test_stochastic_rounding_is_unbiased(sign: int) -> None:
    """The mean of many encodings of one constant is its scaled value, within 6 standard errors.

    Each encoding is floor(s) + Bernoulli(frac(s)), variance f(1 - f) <= 1/4;
    with N encodings the standard error is sqrt(f(1 - f) / N). The seed is
    fixed, so the test is deterministic; 6 sigma keeps it meaningful if the
    seed or numpy's stream ever changes. Plain rounding of a value with
    fraction 0.5 would be off by 0.5 steps, about 400 standard errors.
    """
    q = Quantizer(1.0, 3)
    scaled = sign * (math.floor(0.3 * q.scale) + 0.5)  # fraction 0.5: the hardest case for a bias
    value = scaled / q.scale
    n = 200_000
    encoded = as_int(q.encode(np.full(n, value), np.random.default_rng(20240531)))
    target = value * q.scale
    floor = math.floor(target)
    assert set(np.unique(encoded).tolist()) <= {floor, floor + 1}
    fraction = target - floor
    standard_error = math.sqrt(fraction * (1 - fraction) / n)
    assert abs(encoded.mean() - target) <= 6 * standard_error
    assert 6 * standard_error < 0.05  # the test can see a bias far smaller than a whole step


def test_integral_values_are_encoded_exactly() -> None:
    q = Quantizer(1.0, 1)
    values = np.array([0.0, 3.0, -5.0]) / q.scale
    assert as_int(q.encode(values, np.random.default_rng(0))).tolist() == [0, 3, -5]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_encode_refuses_nan() -> None:
    with pytest.raises(ValueError):
        Quantizer(1.0, 3).encode(np.array([0.5, np.nan]), np.random.default_rng(0))


def test_infinite_inputs_are_clipped() -> None:
    q = Quantizer(2.0, 4)
    decoded = q.decode(q.encode(np.array([np.inf, -np.inf]), np.random.default_rng(0)))
    np.testing.assert_allclose(decoded, [2.0, -2.0], rtol=1e-6)


@pytest.mark.parametrize("clip", [0.0, -1.0, math.nan, math.inf])
def test_quantizer_refuses_a_clip_that_is_not_positive_and_finite(clip: float) -> None:
    with pytest.raises(ValueError, match="clip"):
        Quantizer(clip, 3)


@pytest.mark.parametrize("cohort", [0, -1, 1_000_001])
def test_quantizer_refuses_cohorts_out_of_range(cohort: int) -> None:
    with pytest.raises(ValueError, match="cohort"):
        Quantizer(1.0, cohort)
