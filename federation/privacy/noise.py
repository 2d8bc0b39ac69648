"""Client-level differential privacy on a node: clip the update, add this node's share of noise.

DP-FedAvg style (McMahan et al. 2018) with distributed noise: each of at
least `min_contributors` nodes adds Gaussian noise of standard deviation
sigma * C / sqrt(min_contributors), so any sum over that many or more
carries noise of at least sigma * C without trusting the coordinator to add
it. Counting only the guaranteed contributors (the secure-aggregation
threshold, not the cohort) is the conservative choice when nodes drop.
Noise is added before fixed-point encoding; its scale is orders of
magnitude above the encoding step, so rounding does not remove it.
"""

from __future__ import annotations

import math
import secrets

import numpy as np


def clip_l2(vector: np.ndarray, clip: float) -> np.ndarray:
    """Scale `vector` down to L2 norm `clip` if it is longer."""
    norm = float(np.linalg.norm(vector))
    return vector * (clip / norm) if norm > clip else vector.copy()


def noise_std(noise_multiplier: float, clip: float, *, min_contributors: int) -> float:
    """This node's share of the noise so that any `min_contributors` shares sum to sigma * C."""
    if min_contributors < 1:
        raise ValueError("at least one contributor")
    return noise_multiplier * clip / math.sqrt(min_contributors)


def privatise(
    vector: np.ndarray, *, clip: float, noise_multiplier: float, min_contributors: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Clip to `clip` in L2 norm, then add this node's Gaussian noise share."""
    generator = rng if rng is not None else np.random.default_rng(secrets.randbits(128))
    std = noise_std(noise_multiplier, clip, min_contributors=min_contributors)
    return clip_l2(np.asarray(vector, dtype=np.float64), clip) + generator.normal(0.0, std, size=vector.shape)
