"""Mapping a node's local columns onto the scenario's canonical fields."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from federation.data.schema import Schema
from federation.errors import ConfigError


def harmonise(frame: pd.DataFrame, schema: Schema, columns: Mapping[str, str], *, source: str) -> pd.DataFrame:
    """Rename local columns to canonical names and coerce each to its schema type.

    `columns` maps canonical field -> local column. Every problem is collected
    and reported at once: unmapped required fields, local columns the file
    lacks, values that do not fit the field's type or code list.
    """
    problems: list[str] = []
    unknown = sorted(set(columns) - set(schema.names))
    if unknown:
        problems.append(f"data.columns names fields that are not in schema {schema.name!r}: {unknown}")
    for field in schema.field:
        if field.name not in columns:
            if field.required:
                problems.append(f"data.columns: required field {field.name!r} is not mapped to a local column")
            continue
        local = columns[field.name]
        if local not in frame.columns:
            problems.append(f"data.columns.{field.name}: column {local!r} is not in the data (found {list(frame.columns)[:12]})")
    if problems:
        raise ConfigError(source, problems)

    result = pd.DataFrame(index=frame.index)
    for field in schema.field:
        if field.name not in columns:
            continue
        values = frame[columns[field.name]]
        if field.type in ("float", "int"):
            numeric = pd.to_numeric(values, errors="coerce")
            bad = int((numeric.isna() & values.notna()).sum())
            if bad:
                problems.append(f"{columns[field.name]!r} -> {field.name}: {bad} value(s) are not numbers")
            result[field.name] = numeric.astype(np.float64)
        elif field.type == "bool":
            mapped = values.map(_as_bool)
            bad = int((mapped.isna() & values.notna()).sum())
            if bad:
                problems.append(f"{columns[field.name]!r} -> {field.name}: {bad} value(s) are not booleans")
            result[field.name] = mapped.astype(np.float64)
        else:
            text = values.astype("string")
            outside = sorted(set(text.dropna()) - set(field.codes))
            if outside:
                problems.append(
                    f"{columns[field.name]!r} -> {field.name}: codes {outside[:5]} are not in the code list {list(field.codes)}"
                )
            result[field.name] = pd.Categorical(text.where(text.isin(field.codes)), categories=list(field.codes))
    if problems:
        raise ConfigError(source, problems)
    return result


def _as_bool(value: object) -> float | None:
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "y", "t"):
        return 1.0
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "n", "f"):
        return 0.0
    return None
