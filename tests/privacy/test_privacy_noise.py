"""federation.privacy.noise: clipping, and Gaussian noise shares whose sum carries sigma * C.

The variance checks allow 6 standard errors of the sample variance; a negative control
shows the same check rejects noise that is only slightly too large, so it cannot pass
by accident.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.privacy.noise import clip_l2, noise_std, privatise

N = 200_000
SIGMA, CLIP, CONTRIBUTORS = 1.3, 0.8, 4


def variance_matches(samples: np.ndarray, expected: float, *, standard_errors: float = 6.0) -> bool:
    """Is the mean square of zero-mean samples within `standard_errors` of `expected`?

    For n draws of N(0, s^2), mean(x^2) has mean s^2 and standard error s^2 * sqrt(2 / n)
    (chi-square with n degrees of freedom, divided by n).
    """
    n = samples.size
    observed = float(np.mean(samples**2))
    return abs(observed - expected) <= standard_errors * expected * math.sqrt(2.0 / n)


def mean_matches(samples: np.ndarray, std: float, *, standard_errors: float = 6.0) -> bool:
    return abs(float(np.mean(samples))) <= standard_errors * std / math.sqrt(samples.size)


# -- clipping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vector", "clip"),
    [
        pytest.param([3.0, 4.0], 1.0, id="long"),
        pytest.param([3.0, 4.0], 5.0, id="exactly-at-clip"),
        pytest.param([0.3, -0.4], 1.0, id="short"),
        pytest.param([0.0, 0.0, 0.0], 1.0, id="zero"),
        pytest.param([-1e6, 2e6, 0.5], 0.1, id="huge"),
    ],
)
def test_clip_l2_bounds_the_norm_and_keeps_the_direction(vector: list[float], clip: float) -> None:
    original = np.array(vector)
    clipped = clip_l2(original, clip)
    norm = float(np.linalg.norm(original))
    assert float(np.linalg.norm(clipped)) <= clip * (1 + 1e-12)
    if norm <= clip:
        np.testing.assert_array_equal(clipped, original)
    else:
        assert float(np.linalg.norm(clipped)) == pytest.approx(clip, rel=1e-12)
        np.testing.assert_allclose(clipped * (norm / clip), original, rtol=1e-12)


def test_clip_l2_never_aliases_its_input() -> None:
    short = np.array([0.1, 0.2])
    clipped = clip_l2(short, 1.0)
    clipped[0] = 99.0
    assert short[0] == 0.1


@given(
    st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=30),
    st.floats(min_value=1e-3, max_value=1e3),
)
def test_clip_l2_norm_is_at_most_the_clip(values: list[float], clip: float) -> None:
    vector = np.array(values)
    clipped = clip_l2(vector, clip)
    assert float(np.linalg.norm(clipped)) <= clip * (1 + 1e-9)
    if float(np.linalg.norm(vector)) <= clip:
        np.testing.assert_array_equal(clipped, vector)


# -- noise -------------------------------------------------------------------------


def test_noise_std_divides_sigma_c_among_the_guaranteed_contributors() -> None:
    assert noise_std(2.0, 0.5, min_contributors=1) == pytest.approx(1.0)
    assert noise_std(2.0, 0.5, min_contributors=4) == pytest.approx(0.5)
    assert noise_std(SIGMA, CLIP, min_contributors=CONTRIBUTORS) ** 2 * CONTRIBUTORS == pytest.approx((SIGMA * CLIP) ** 2)


@pytest.mark.parametrize("contributors", [0, -1])
def test_noise_std_needs_a_contributor(contributors: int) -> None:
    with pytest.raises(ValueError, match="contributor"):
        noise_std(1.0, 1.0, min_contributors=contributors)


def test_privatise_adds_noise_of_the_promised_variance() -> None:
    std = noise_std(SIGMA, CLIP, min_contributors=CONTRIBUTORS)
    noise = privatise(
        np.zeros(N), clip=CLIP, noise_multiplier=SIGMA, min_contributors=CONTRIBUTORS, rng=np.random.default_rng(11)
    )
    assert noise.shape == (N,)
    assert variance_matches(noise, std**2)
    assert mean_matches(noise, std)


def test_privatise_clips_before_adding_noise() -> None:
    vector = np.full(N, 3.0)  # norm far above the clip
    clipped = clip_l2(vector, CLIP)
    out = privatise(vector, clip=CLIP, noise_multiplier=SIGMA, min_contributors=CONTRIBUTORS, rng=np.random.default_rng(12))
    std = noise_std(SIGMA, CLIP, min_contributors=CONTRIBUTORS)
    assert variance_matches(out - clipped, std**2)
    assert mean_matches(out - clipped, std)


@pytest.mark.parametrize("factor", [2.0, 1.1, 0.9], ids=["twice", "ten-percent-more", "ten-percent-less"])
def test_the_variance_check_rejects_the_wrong_noise(factor: float) -> None:
    """Negative control: the same check, on noise of the wrong scale, must fail."""
    std = noise_std(SIGMA, CLIP, min_contributors=CONTRIBUTORS)
    wrong = np.random.default_rng(11).normal(0.0, factor * std, size=N)
    assert not variance_matches(wrong, std**2)
    right = np.random.default_rng(11).normal(0.0, std, size=N)
    assert variance_matches(right, std**2)


def test_the_shares_of_the_guaranteed_contributors_sum_to_sigma_c() -> None:
    rng = np.random.default_rng(13)
    n = N // 2
    total = sum(
        privatise(np.zeros(n), clip=CLIP, noise_multiplier=SIGMA, min_contributors=CONTRIBUTORS, rng=rng)
        for _ in range(CONTRIBUTORS)
    )
    assert variance_matches(total, (SIGMA * CLIP) ** 2)
    # one share alone carries only a quarter of it
    assert not variance_matches(total / 2, (SIGMA * CLIP) ** 2)


def test_privatise_without_a_generator_draws_fresh_noise() -> None:
    first = privatise(np.zeros(16), clip=1.0, noise_multiplier=1.0, min_contributors=1)
    second = privatise(np.zeros(16), clip=1.0, noise_multiplier=1.0, min_contributors=1)
    assert not np.array_equal(first, second)


def test_privatise_with_the_same_generator_seed_is_reproducible() -> None:
    kwargs = {"clip": 1.0, "noise_multiplier": 1.0, "min_contributors": 3}
    a = privatise(np.ones(8), rng=np.random.default_rng(5), **kwargs)  # type: ignore[arg-type]
    b = privatise(np.ones(8), rng=np.random.default_rng(5), **kwargs)  # type: ignore[arg-type]
    np.testing.assert_array_equal(a, b)
