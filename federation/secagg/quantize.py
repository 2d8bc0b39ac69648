"""Fixed-point encoding of clipped updates, summed modulo 2^32 without overflow.

Each of `cohort` inputs is clipped to [-clip, clip] and scaled by
`scale = ((2^31 - 1) / cohort - 1) / clip`, then stochastically rounded
(unbiased). The sum of `cohort` encoded values is then below 2^31 in
magnitude, so the uint32 sum read back as int32 is the exact integer sum,
and dividing by `scale` gives the float sum to within 1/scale per input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Quantizer:
    clip: float
    cohort: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise ValueError(f"clip must be positive, got {self.clip}")
        if not 1 <= self.cohort <= 1_000_000:
            raise ValueError(f"cohort must be in 1..1000000, got {self.cohort}")

    @property
    def scale(self) -> float:
        return ((2**31 - 1) / self.cohort - 1) / self.clip

    def encode(self, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Clip, scale and stochastically round to uint32 (two's complement); NaN is refused."""
        array = np.asarray(values, dtype=np.float64)
        if np.isnan(array).any():
            raise ValueError("cannot encode NaN: the update diverged")
        scaled = np.clip(array, -self.clip, self.clip) * self.scale
        floor = np.floor(scaled)
        rounded = floor + (rng.random(scaled.shape) < (scaled - floor))
        return rounded.astype(np.int64).astype(np.uint32)

    def decode(self, total: np.ndarray) -> np.ndarray:
        """The float64 sum of the encoded inputs from their uint32 sum."""
        return np.asarray(total, dtype=np.uint32).view(np.int32).astype(np.float64) / self.scale
