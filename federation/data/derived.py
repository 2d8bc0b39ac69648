"""Derived features: what each node computes from its harmonised records, before its train/test split.

A department never precomputes these by hand: the schema's `[[derived]]`
entries say what to compute, and every node computes them the same way, on
canonical values (canonical units, canonical dates), so the features mean
the same thing on every node.

Calendar features put the day of the week (Monday 0 to Sunday 6) on a
7-point circle and the month (January to December) on a 12-point circle,
each as a sine and a cosine, so Sunday sits next to Monday and December
next to January; the value is the same for every day of one month.

A lag is the value of the same entity's k-th previous record (k =
`periods`, counted in records, not in days: a firm that skipped a month
gets the record before the gap). An entity's records are ordered by the
`order` date; records with equal dates are ordered by `__row`, their
position in the node's local table (by frame position when there is no
`__row`), so the result is deterministic and does not depend on how the
frame happens to be sorted. A lag only ever looks backwards along that
order, which is why a lag of the target (the entity's previous outcome) is
allowed: it is known before the record it describes. (Two records of one
entity on the same day are the exception to "strictly earlier in time": the
later one in the file sees the earlier one.)

Missing values are NaN, never imputed here: the first k records of an
entity; a record whose entity or order date is missing (it has no place in
any history, and is not history for other records); a record whose k-th
previous record has a missing value (no older value is carried forward);
a calendar feature of a missing date. Derived fields are never required, so
a NaN never excludes a record. Downstream NaN is a missing number like any
other: `encode` keeps it, Stats and the bounded statistics count only
present values (the global mean is over records that have a history),
histograms skip it, and `standardise` imputes it at the global mean.

Lags are computed on the records harmonisation keeps: an excluded record
(a failed quality rule, a duplicate) is not part of any entity's history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from federation.data.schema import CALENDAR_KINDS, DerivedField, Schema

TIE_COLUMN = "__row"


def add_derived(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The frame with the schema's derived columns added (float64, in schema order); rows keep their order."""
    if not schema.derived:
        return frame
    result = frame.copy()
    ties = frame[TIE_COLUMN].to_numpy() if TIE_COLUMN in frame.columns else np.arange(len(frame))
    for entry in schema.derived:
        result[entry.name] = derive(frame, entry, ties=ties)
    return result


def derive(frame: pd.DataFrame, entry: DerivedField, *, ties: np.ndarray) -> np.ndarray:
    """One derived column; `ties` orders an entity's records that share a date."""
    if entry.kind in CALENDAR_KINDS:
        return calendar(frame[entry.source], entry.kind)
    if entry.entity is None or entry.order is None:  # pragma: no cover - the schema refuses such a lag
        raise ValueError(f"derived field {entry.name!r}: a lag needs an entity and an order")
    return lag(frame[entry.source], frame[entry.entity], frame[entry.order], ties=ties, periods=entry.lag_periods)


def calendar(dates: pd.Series, kind: str) -> np.ndarray:
    """Sine or cosine of the day of the week (period 7) or of the month (period 12); NaN for a missing date."""
    if kind not in CALENDAR_KINDS:
        raise ValueError(f"unknown calendar kind {kind!r}; the kinds are {', '.join(CALENDAR_KINDS)}")
    days = as_dates(dates)
    if kind.startswith("day_of_week"):
        angle = 2 * np.pi * days.dt.day_of_week.to_numpy(dtype=np.float64, na_value=np.nan) / 7
    else:
        angle = 2 * np.pi * (days.dt.month.to_numpy(dtype=np.float64, na_value=np.nan) - 1) / 12
    result: np.ndarray = np.sin(angle) if kind.endswith("_sin") else np.cos(angle)
    return result


def lag(values: pd.Series, entity: pd.Series, order: pd.Series, *, ties: np.ndarray, periods: int) -> np.ndarray:
    """Each record's value `periods` records earlier within its entity, ordered by (order, ties); NaN where none."""
    if periods < 1:
        raise ValueError(f"a lag looks only backwards: periods must be at least 1, got {periods}")
    numbers = pd.to_numeric(pd.Series(values).reset_index(drop=True), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    keys = pd.Series(entity).reset_index(drop=True)
    times = as_dates(order).reset_index(drop=True)
    placed = (keys.notna() & times.notna()).to_numpy(dtype=bool)
    table = pd.DataFrame(
        {"entity": keys[placed], "time": times[placed], "tie": np.asarray(ties)[placed], "value": numbers[placed]},
        index=np.flatnonzero(placed),
    )
    table = table.sort_values(["entity", "time", "tie"], kind="stable")
    shifted = table.groupby("entity", sort=False, observed=True)["value"].shift(periods)
    result = np.full(len(numbers), np.nan)
    result[shifted.index.to_numpy()] = shifted.to_numpy(dtype=np.float64, na_value=np.nan)
    return result


def as_dates(values: pd.Series) -> pd.Series:
    """Dates as datetimes: harmonised dates already are; text (the naive view) is parsed, unparsable text is NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    return pd.to_datetime(values, errors="coerce", format="mixed")
