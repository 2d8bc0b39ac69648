"""Turning harmonised rows into model inputs: one-hot categories, global scaling.

The encoded column list depends only on the schema and the task, never on a
node's data, so every node and the central pool build identical inputs.
Derived features (`federation.data.derived`) are float fields of the schema
and columns of the harmonised frame, so they encode like any other number:
a missing lag stays NaN here and is imputed at the global mean by
`standardise`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from federation.data.schema import FEATURE_TYPES, Schema
from federation.errors import InvalidRequest


def encoded_columns(schema: Schema, features: Sequence[str]) -> tuple[str, ...]:
    """Names of the model's input columns, in order."""
    columns: list[str] = []
    for name in features:
        try:
            field = schema.by_name(name)
        except KeyError:
            raise InvalidRequest(f"feature {name!r} is not a field of schema {schema.name!r}") from None
        if field.type not in FEATURE_TYPES:
            raise InvalidRequest(f"{field.type} field {name!r} cannot be a model feature")
        if field.type == "category":
            columns.extend(f"{name}={code}" for code in field.codes)
        else:
            columns.append(name)
    return tuple(columns)


def encode(frame: pd.DataFrame, schema: Schema, features: Sequence[str], *, dtype: type[np.floating] = np.float32) -> np.ndarray:
    """A matrix of the features (float32 for models, float64 for statistics); missing numbers stay NaN."""
    parts: list[np.ndarray] = []
    for name in features:
        field = schema.by_name(name)
        if field.type == "category":
            values = frame[name].astype("string")
            parts.extend(values.eq(code).fillna(False).to_numpy(dtype=dtype)[:, None] for code in field.codes)
        else:
            parts.append(frame[name].to_numpy(dtype=dtype)[:, None])
    if not parts:
        return np.zeros((len(frame), 0), dtype=dtype)
    return np.concatenate(parts, axis=1)


def standardise(matrix: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Scale with global statistics and impute missing values at the global mean (0)."""
    scaled = (matrix - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.nan_to_num(scaled, nan=0.0).astype(np.float32)


def labels(frame: pd.DataFrame, target: str) -> np.ndarray:
    """0/1 labels of a binary target, as float32."""
    return frame[target].to_numpy(dtype=np.float32)


def regression_targets(frame: pd.DataFrame, target: str) -> np.ndarray:
    """A numeric target as finite float32 values.

    Unlike a feature, a target is never imputed: a missing or non-finite
    value would silently bias the squared error, so it is an error naming the
    column and the count (never a record's value).
    """
    if target not in frame.columns:
        raise InvalidRequest(f"the regression target {target!r} is not a column of the records")
    numbers = pd.to_numeric(frame[target], errors="coerce")
    values = np.asarray(numbers.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise InvalidRequest(
            f"the regression target {target!r} has {bad} of {len(values)} record(s) missing, not a number or not finite"
        )
    if len(values) and float(np.abs(values).max()) > float(np.finfo(np.float32).max):
        raise InvalidRequest(f"the regression target {target!r} has values too large for float32")
    return values.astype(np.float32)


def targets(frame: pd.DataFrame, target: str, objective: str) -> np.ndarray:
    """A task's target as float32: 0/1 labels (objective "binary"), or a regression's numeric values."""
    return regression_targets(frame, target) if objective == "regression" else labels(frame, target)
