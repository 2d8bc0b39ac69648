"""Deterministic train/test splits, the same on every run and in every topology."""

from __future__ import annotations

import numpy as np
import pandas as pd


def split(frame: pd.DataFrame, *, test_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows at random with a fixed seed, keeping at least one row on each side."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(len(frame))
    n_test = min(max(1, round(len(frame) * test_fraction)), max(len(frame) - 1, 0))
    test, train = order[:n_test], order[n_test:]
    return frame.iloc[np.sort(train)].reset_index(drop=True), frame.iloc[np.sort(test)].reset_index(drop=True)
