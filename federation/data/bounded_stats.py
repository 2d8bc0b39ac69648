"""Federated statistics as one bounded vector, so they can be summed under secure aggregation.

Secure aggregation sums fixed-point values in [-1, 1]; statistics are
counts, sums and sums of squares of very different sizes. Each element is
divided by a public bound: counts by the weight cap M (no node has more
records), a column's sum by M * R and its sum of squares by M * R^2, where R
bounds the column's absolute value (the schema's range; 1 for one-hot and
yes/no columns), histogram counts by M. A numeric feature without a range in
the schema cannot be bounded and so cannot be summed securely.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from federation.data.encoding import encode, encoded_columns
from federation.data.quality import histograms
from federation.data.schema import Schema
from federation.errors import InvalidRequest


def column_bounds(schema: Schema, features: Sequence[str]) -> np.ndarray:
    """R per encoded column: the largest absolute value the column can take."""
    bounds: list[float] = []
    for name in features:
        f = schema.by_name(name)
        if f.type == "category":
            bounds.extend([1.0] * len(f.codes))
        elif f.type == "bool":
            bounds.append(1.0)
        elif f.min is None or f.max is None:
            raise InvalidRequest(f"field {name!r} has no range in the schema, so its statistics cannot be summed securely")
        else:
            bounds.append(max(abs(f.min), abs(f.max), 1e-12))
    return np.asarray(bounds, dtype=np.float64)


def vector_length(schema: Schema, features: Sequence[str]) -> int:
    columns = len(encoded_columns(schema, features))
    bins = sum(len(counts) for _, counts in histograms(_empty(schema, features), schema, tuple(features)).values())
    return 3 * columns + bins


def _empty(schema: Schema, features: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=np.float64) for name in features})


def to_vector(frame: pd.DataFrame, schema: Schema, features: Sequence[str], *, cap: float) -> np.ndarray:
    """This node's statistics, each element divided by its public bound (so within [-1, 1])."""
    bounds = column_bounds(schema, features)
    matrix = encode(frame, schema, features, dtype=np.float64)
    present = ~np.isnan(matrix)
    values = np.clip(np.where(present, matrix, 0.0), -bounds, bounds)
    if len(frame) > cap:
        raise InvalidRequest(f"this node has more records ({len(frame)}) than the round's cap ({cap:g})")
    parts = [present.sum(axis=0) / cap, values.sum(axis=0) / (cap * bounds), (values**2).sum(axis=0) / (cap * bounds**2)]
    hist = histograms(frame, schema, tuple(features))
    parts += [np.asarray(counts, dtype=np.float64) / cap for _, counts in hist.values()]
    return np.concatenate(parts)


def from_vector(
    total: np.ndarray, schema: Schema, features: Sequence[str], *, cap: float
) -> tuple[
    tuple[str, ...], tuple[int, ...], tuple[float, ...], tuple[float, ...], dict[str, tuple[tuple[float, ...], tuple[int, ...]]]
]:
    """(columns, counts, sums, sums of squares, histograms) from the summed, still normalised vector."""
    columns = encoded_columns(schema, features)
    bounds = column_bounds(schema, features)
    c = len(columns)
    counts = tuple(int(np.rint(v)) for v in total[:c] * cap)
    sums = tuple(float(v) for v in total[c : 2 * c] * cap * bounds)
    squares = tuple(float(v) for v in total[2 * c : 3 * c] * cap * bounds**2)
    offset, hist = 3 * c, {}
    for column, (edges, bins) in histograms(_empty(schema, features), schema, tuple(features)).items():
        n = len(bins)
        hist[column] = (edges, tuple(int(np.rint(v)) for v in total[offset : offset + n] * cap))
        offset += n
    return columns, counts, sums, squares, hist
