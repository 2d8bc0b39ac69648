"""Deterministic train/test splits, the same on every run and in every topology."""

from __future__ import annotations

import numpy as np
import pandas as pd


def split(frame: pd.DataFrame, *, test_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows at random with a fixed seed, keeping at least one row on each side."""
    test = test_rows(len(frame), test_fraction=test_fraction, seed=seed)
    train = np.setdiff1d(np.arange(len(frame)), test)
    return frame.iloc[train].reset_index(drop=True), frame.iloc[test].reset_index(drop=True)


def test_rows(total: int, *, test_fraction: float, seed: int | list[int]) -> np.ndarray:
    """Positions in the local table that form the test split, fixed before any record is excluded.

    Fixing the split on the local table, not on what survives harmonisation,
    keeps the same records in the test split whichever way the data is read.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(total)
    n_test = min(max(1, round(total * test_fraction)), max(total - 1, 0))
    return np.sort(order[:n_test])


def redrawn_test_rows(rows: np.ndarray, labels: np.ndarray | None, *, test_fraction: float, seed: list[int]) -> np.ndarray:
    """Another test split over the records `rows` (local positions), stratified by binary `labels` if given.

    Stratified so that every draw of a binary task holds out both classes in
    the node's proportion (a draw without positives would have no AUC); at
    least one record of a class with two or more goes to each side.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    rows = np.asarray(rows)
    groups = [np.arange(len(rows))] if labels is None else [np.flatnonzero(labels <= 0.5), np.flatnonzero(labels > 0.5)]
    held = []
    for group in groups:
        if len(group) == 0:
            continue
        n_test = min(max(1, round(len(group) * test_fraction)), max(len(group) - 1, 0))
        held.append(rng.permutation(group)[:n_test])
    return np.sort(rows[np.concatenate(held)]) if held else np.zeros(0, dtype=rows.dtype)


def split_by_rows(frame: pd.DataFrame, test: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a frame carrying a `__row` column (local positions) into (train, test)."""
    in_test = frame["__row"].isin(test)
    return frame.loc[~in_test].reset_index(drop=True), frame.loc[in_test].reset_index(drop=True)
