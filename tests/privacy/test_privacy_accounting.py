"""federation.privacy.accounting: epsilon by Opacus' RDP accountant, and the least noise a budget allows.

The reference is Opacus itself, driven the way a training loop drives it (`step` once per
release), so a mistake in how the history is handed to the accountant shows up here.
"""

from __future__ import annotations

import math
import warnings

import pytest
from opacus.accountants import RDPAccountant

from federation.privacy.accounting import MAX_NOISE_MULTIPLIER, MechanismStep, epsilon_of, noise_for_budget

DELTA = 1e-5


def stepped(history: list[tuple[float, float, int]], delta: float) -> float:
    """Epsilon from an accountant stepped one release at a time."""
    accountant = RDPAccountant()
    for sigma, rate, steps in history:
        for _ in range(steps):
            accountant.step(noise_multiplier=sigma, sample_rate=rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(accountant.get_epsilon(delta=delta))


@pytest.mark.parametrize(
    ("sigma", "rate", "steps", "delta"),
    [
        pytest.param(1.0, 1.0, 1, 1e-5, id="one-full-release"),
        pytest.param(2.0, 1.0, 30, 1e-5, id="thirty-full-releases"),
        pytest.param(0.8, 0.05, 20, 1e-5, id="subsampled-many"),
        pytest.param(5.0, 0.3, 10, 1e-6, id="subsampled-small-delta"),
        pytest.param(0.6, 1.0, 3, 1e-3, id="little-noise"),
    ],
)
def test_epsilon_of_equals_opacus_stepped(sigma: float, rate: float, steps: int, delta: float) -> None:
    expected = stepped([(sigma, rate, steps)], delta)
    assert epsilon_of([MechanismStep(sigma, rate, steps)], delta=delta) == pytest.approx(expected, rel=1e-9)
    assert epsilon_of([MechanismStep(sigma, rate, 1)] * steps, delta=delta) == pytest.approx(expected, rel=1e-9)


def test_a_history_composes_like_stepping_each_release() -> None:
    history = [(2.0, 1.0, 3), (1.2, 0.1, 40), (4.0, 1.0, 10), (2.0, 1.0, 2)]
    composed = epsilon_of([MechanismStep(*h) for h in history], delta=DELTA)
    assert composed == pytest.approx(stepped(history, DELTA), rel=1e-9)
    # composition does not depend on order, and exceeds each part
    assert epsilon_of([MechanismStep(*h) for h in reversed(history)], delta=DELTA) == pytest.approx(composed, rel=1e-9)
    assert all(composed > epsilon_of([MechanismStep(*h)], delta=DELTA) for h in history)


def test_an_empty_history_spends_nothing() -> None:
    assert epsilon_of([], delta=DELTA) == 0.0


def test_more_releases_and_less_noise_spend_more() -> None:
    few = epsilon_of([MechanismStep(2.0, 1.0, 5)], delta=DELTA)
    assert epsilon_of([MechanismStep(2.0, 1.0, 6)], delta=DELTA) > few
    assert epsilon_of([MechanismStep(1.9, 1.0, 5)], delta=DELTA) > few
    assert epsilon_of([MechanismStep(2.0, 1.0, 5)], delta=DELTA * 10) < few


def total(history: list[MechanismStep], sigma: float, steps: int, rate: float = 1.0) -> float:
    return epsilon_of([*history, MechanismStep(sigma, rate, steps)], delta=DELTA)


@pytest.mark.parametrize(
    ("history", "epsilon", "steps", "rate"),
    [
        pytest.param([], 8.0, 1, 1.0, id="fresh-one-round"),
        pytest.param([], 8.0, 50, 1.0, id="fresh-fifty-rounds"),
        pytest.param([], 1.0, 10, 1.0, id="small-budget"),
        pytest.param([], 2.0, 100, 0.2, id="subsampled"),
        pytest.param([MechanismStep(3.0, 1.0, 10)], 8.0, 10, 1.0, id="partly-spent"),
        pytest.param([MechanismStep(2.0, 1.0, 9)], 8.0, 5, 1.0, id="nearly-spent"),
    ],
)
def test_the_noise_for_a_budget_is_the_least_that_fits(
    history: list[MechanismStep], epsilon: float, steps: int, rate: float
) -> None:
    sigma = noise_for_budget(history, epsilon=epsilon, delta=DELTA, sample_rate=rate, steps=steps)
    assert sigma is not None
    assert total(history, sigma, steps, rate) <= epsilon
    assert total(history, sigma * 0.99, steps, rate) > epsilon


def test_a_history_raises_the_noise_the_remaining_rounds_need() -> None:
    fresh = noise_for_budget([], epsilon=8.0, delta=DELTA, sample_rate=1.0, steps=10)
    used = noise_for_budget([MechanismStep(2.0, 1.0, 5)], epsilon=8.0, delta=DELTA, sample_rate=1.0, steps=10)
    assert fresh is not None and used is not None
    assert used > fresh


@pytest.mark.parametrize(
    "history",
    [
        pytest.param([MechanismStep(0.5, 1.0, 10)], id="far-over"),
        pytest.param([MechanismStep(2.0, 1.0, 10)], id="just-over"),
    ],
)
def test_no_noise_fits_a_spent_budget(history: list[MechanismStep]) -> None:
    assert epsilon_of(history, delta=DELTA) > 8.0
    assert noise_for_budget(history, epsilon=8.0, delta=DELTA, sample_rate=1.0, steps=1) is None


def test_the_largest_noise_considered_bounds_the_search() -> None:
    history = [MechanismStep(2.0, 1.0, 9)]
    spent = epsilon_of(history, delta=DELTA)
    # a budget a hair above what is spent: fits only with noise past the search's ceiling
    assert total(history, MAX_NOISE_MULTIPLIER, 1) > spent
    assert noise_for_budget(history, epsilon=spent * (1 + 1e-15), delta=DELTA, sample_rate=1.0, steps=1) is None


@pytest.mark.parametrize(
    ("sigma", "rate", "steps"),
    [
        pytest.param(0.0, 1.0, 1, id="zero-noise"),
        pytest.param(-1.0, 1.0, 1, id="negative-noise"),
        pytest.param(math.inf, 1.0, 1, id="infinite-noise"),
        pytest.param(math.nan, 1.0, 1, id="nan-noise"),
        pytest.param(1.0, 0.0, 1, id="zero-rate"),
        pytest.param(1.0, -0.5, 1, id="negative-rate"),
        pytest.param(1.0, 1.5, 1, id="rate-above-one"),
        pytest.param(1.0, math.nan, 1, id="nan-rate"),
        pytest.param(1.0, 1.0, 0, id="zero-steps"),
        pytest.param(1.0, 1.0, -3, id="negative-steps"),
    ],
)
def test_a_mechanism_step_refuses_impossible_values(sigma: float, rate: float, steps: int) -> None:
    with pytest.raises(ValueError):
        MechanismStep(sigma, rate, steps)


def test_a_mechanism_step_accepts_its_boundaries_and_is_frozen() -> None:
    step = MechanismStep(1e-3, 1.0, 1)
    with pytest.raises(AttributeError):
        step.steps = 2  # type: ignore[misc]
