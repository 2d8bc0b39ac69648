"""The local quality report: how many records were kept, and why the others were excluded.

Only these counts may ever leave the node (through Describe, under the
policy); the records themselves and their values never do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from federation.data.schema import Schema


@dataclass
class QualityReport:
    """Counts by reason; a record with several problems counts under each of them."""

    total: int = 0
    kept: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def excluded(self) -> int:
        return self.total - self.kept

    def add(self, reason: str, mask: np.ndarray | pd.Series) -> None:
        count = int(np.asarray(mask, dtype=bool).sum())
        if count:
            self.reasons[reason] = self.reasons.get(reason, 0) + count

    def lines(self) -> list[str]:
        lines = [f"{self.total} records read, {self.kept} kept, {self.excluded} excluded"]
        lines += [f"  {count:>6}  {reason}" for reason, count in sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))]
        return lines


def duplicates(frame: pd.DataFrame, unique: tuple[str, ...]) -> pd.Series:
    """Records that repeat an earlier record's values on `unique` (the first one is kept)."""
    if not unique:
        return pd.Series(False, index=frame.index)
    return frame.duplicated(subset=list(unique), keep="first")


def out_of_range(values: pd.Series, minimum: float | None, maximum: float | None) -> tuple[pd.Series, pd.Series]:
    """(below minimum, above maximum) masks; missing values are neither."""
    below = values < minimum if minimum is not None else pd.Series(False, index=values.index)
    above = values > maximum if maximum is not None else pd.Series(False, index=values.index)
    return below.fillna(False).astype(bool), above.fillna(False).astype(bool)


HISTOGRAM_BINS = 50


def histograms(
    frame: pd.DataFrame, schema: Schema, features: tuple[str, ...], *, bins: int = HISTOGRAM_BINS
) -> dict[str, tuple[tuple[float, ...], tuple[int, ...]]]:
    """Counts on fixed edges over each numeric feature's schema range, so they add up across nodes."""
    result = {}
    for name in features:
        f = schema.by_name(name)
        if f.type not in ("float", "int") or f.min is None or f.max is None or f.max <= f.min:
            continue
        edges = np.linspace(f.min, f.max, bins + 1)
        values = frame[name].to_numpy(dtype=np.float64)
        values = np.clip(values[~np.isnan(values)], f.min, f.max)
        counts, _ = np.histogram(values, bins=edges)
        result[name] = (tuple(float(e) for e in edges), tuple(int(c) for c in counts))
    return result
