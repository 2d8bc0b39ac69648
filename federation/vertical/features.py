"""A party's own columns made ready for a linear model, on the party, from its own training rows only.

Quantities such as water intake or output are log-normal across firms and
a mass balance is a ratio, so positive quantities are taken as log1p (a
ratio becomes a difference a linear model can weigh); missing cells get the
median of the party's training rows; every column is standardised with the
training rows' mean and spread. Nothing here leaves the party.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def prepare(frame: pd.DataFrame, columns: list[str], train: np.ndarray, *, log: bool = True) -> np.ndarray:
    """n x len(columns) floats: log1p where a column is never negative, imputed, standardised on `train` rows."""
    out = np.empty((len(frame), len(columns)))
    for i, column in enumerate(columns):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        if log and np.nanmin(values, initial=0.0) >= 0:
            values = np.log1p(values)
        fitted = values[train]
        middle = np.nanmedian(fitted) if np.isfinite(fitted).any() else 0.0
        values = np.where(np.isfinite(values), values, middle)
        spread = float(np.std(values[train])) or 1.0
        out[:, i] = (values - float(np.mean(values[train]))) / spread
    return out
