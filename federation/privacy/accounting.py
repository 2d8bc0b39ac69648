"""Privacy accounting with Opacus' RDP accountant: what has been spent, what noise a budget allows.

Pure mathematics stays in Opacus; this module only composes a node's history
of Gaussian-mechanism releases (noise multiplier, sampling rate, steps) and
searches for the smallest noise multiplier that keeps a planned run inside
the remaining budget.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

# Beyond this much noise a release carries no usable signal (one step at sigma 100
# already costs epsilon ~0.05 at delta 1e-5), so a budget that cannot fit even
# this is treated as spent rather than draining it with ever noisier releases.
MAX_NOISE_MULTIPLIER = 100.0
# RDP composition makes a very noisy step almost free, so "spent" needs a floor:
# a budget with less than this share left is spent.
SPENT_SHARE = 0.01


@dataclass(frozen=True)
class MechanismStep:
    """`steps` releases of a Gaussian mechanism with this noise multiplier and sampling rate."""

    noise_multiplier: float
    sample_rate: float
    steps: int

    def __post_init__(self) -> None:
        if not (self.noise_multiplier > 0 and math.isfinite(self.noise_multiplier)):
            raise ValueError(f"noise multiplier must be positive and finite, got {self.noise_multiplier}")
        if not 0 < self.sample_rate <= 1:
            raise ValueError(f"sample rate must be in (0, 1], got {self.sample_rate}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")


def epsilon_of(history: Sequence[MechanismStep], *, delta: float) -> float:
    """Epsilon of the composition of `history` at `delta`, by Opacus' RDP accountant."""
    if not history:
        return 0.0
    from opacus.accountants import RDPAccountant  # Opacus brings torch and scipy: ~300 MB, paid only where DP is used

    accountant = RDPAccountant()
    accountant.history = [(h.noise_multiplier, h.sample_rate, h.steps) for h in history]
    with warnings.catch_warnings():  # "optimal order is the largest alpha": a looser, still valid bound
        warnings.filterwarnings("ignore", message="Optimal order", category=UserWarning)
        return float(accountant.get_epsilon(delta=delta))


def noise_for_budget(
    history: Sequence[MechanismStep], *, epsilon: float, delta: float, sample_rate: float, steps: int
) -> float | None:
    """The smallest noise multiplier with which `steps` more releases keep the total within `epsilon`.

    None when the budget is spent: less than `SPENT_SHARE` of it is left, or even
    `MAX_NOISE_MULTIPLIER` would exceed it.
    """

    def total(sigma: float) -> float:
        return epsilon_of([*history, MechanismStep(sigma, sample_rate, steps)], delta=delta)

    if epsilon - epsilon_of(history, delta=delta) < SPENT_SHARE * epsilon or total(MAX_NOISE_MULTIPLIER) > epsilon:
        return None
    low, high = 1e-2, MAX_NOISE_MULTIPLIER
    if total(low) <= epsilon:
        return low
    for _ in range(60):  # bisection in log space: well below 1 % relative error
        middle = math.sqrt(low * high)
        if total(middle) <= epsilon:
            high = middle
        else:
            low = middle
        if high / low < 1.001:
            break
    return high
