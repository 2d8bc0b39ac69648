"""Mapping a node's local records onto the scenario's canonical schema.

Local column -> canonical field; local unit -> the schema's unit (pint);
local codes -> canonical codes; local date formats; local missing-value
markers; and versioned mappings, for a local standard that changed on a
date. What cannot be mapped is either a configuration error (a column the
file lacks, a unit that does not convert, a code mapped to something the
schema does not know: found at start-up) or a counted quality failure of the
record (a value that does not parse, an unknown code, a value out of range,
a missing required value, a duplicate), chosen by `on_error`. The schema's
derived features are then computed on the kept records
(`federation.data.derived`), so every caller gets them.

`read_naively` is the comparison's baseline: columns matched by position,
no unit conversion, codes as written; what a central platform gets when it
pours files together without knowing each department's standard.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from federation.data.derived import add_derived
from federation.data.quality import QualityReport, duplicates, out_of_range
from federation.data.schema import Schema, SchemaField, units
from federation.errors import ConfigError

OnError = Literal["exclude", "fail"]
TRUE_WORDS = frozenset({"1", "true", "yes", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "f"})


@dataclass(frozen=True)
class ColumnMapping:
    """How one canonical field is read from the local table."""

    column: str
    unit: str | None = None
    codes: Mapping[str, str] = field(default_factory=dict)
    format: str | None = None
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class MappingVersion:
    """Mappings that replace the base ones for records dated in [start, end]."""

    start: dt.date | None
    end: dt.date | None
    columns: Mapping[str, ColumnMapping]


@dataclass(frozen=True)
class TableMapping:
    columns: Mapping[str, ColumnMapping]
    missing: tuple[str, ...] = ()
    versions: tuple[MappingVersion, ...] = ()
    date_field: str | None = None
    unique: tuple[str, ...] = ()
    on_error: OnError = "exclude"


@dataclass
class Harmonised:
    frame: pd.DataFrame  # canonical columns, plus "__row": the record's position in the local table
    report: QualityReport


def check_mapping(mapping: TableMapping, schema: Schema, available: list[str], *, source: str) -> None:
    """Every problem a mapping has before any record is read, reported at once."""
    problems: list[str] = []
    names = set(schema.names)
    for label, columns in [("data.columns", mapping.columns)] + [
        (f"data.versions[{i}].columns", v.columns) for i, v in enumerate(mapping.versions)
    ]:
        for name, column in columns.items():
            where = f"{label}.{name}"
            if name in schema.derived_names:
                problems.append(f"{where}: {name!r} is derived by the schema on the node, so it is not read from a local column")
                continue
            if name not in names:
                problems.append(f"{where}: {name!r} is not a field of schema {schema.name!r}")
                continue
            problems += _column_problems(where, column, schema.by_name(name), available)
    for f in schema.declared:
        if f.required and f.name not in mapping.columns:
            problems.append(f"data.columns: required field {f.name!r} is not mapped to a local column")
    if mapping.versions:
        if mapping.date_field is None:
            problems.append("data.date_field: versioned mappings need the canonical date field that selects a version")
        elif mapping.date_field not in mapping.columns or schema.by_name(mapping.date_field).type != "date":
            problems.append(f"data.date_field: {mapping.date_field!r} must be a mapped field of type date")
    for name in mapping.unique:
        if name in schema.derived_names:
            problems.append(f"quality.unique: {name!r} is derived after the quality rules, so it cannot make a record unique")
        elif name not in names:
            problems.append(f"quality.unique: {name!r} is not a field of schema {schema.name!r}")
    if problems:
        raise ConfigError(source, problems)


def _column_problems(where: str, column: ColumnMapping, target: SchemaField, available: list[str]) -> list[str]:
    problems = []
    if column.column not in available:
        shown = ", ".join(available[:12]) + (" ..." if len(available) > 12 else "")
        problems.append(f"{where}: column {column.column!r} is not in the data (it has: {shown})")
    if column.unit is not None:
        if not target.unit:
            problems.append(f"{where}: unit {column.unit!r} given, but field {target.name!r} has no unit in the schema")
        else:
            try:
                units().Quantity(1.0, column.unit).to(target.unit)
            except Exception as error:  # noqa: BLE001 - pint raises several types
                problems.append(f"{where}: unit {column.unit!r} cannot be converted to {target.unit!r} ({error})")
    if column.codes:
        if target.type == "category":
            unknown = sorted({v for v in column.codes.values() if v not in target.codes})
            if unknown:
                problems.append(f"{where}: codes map to {unknown}, which are not in the schema's code list {list(target.codes)}")
        elif target.type == "bool":
            bad = sorted({v for v in column.codes.values() if v.lower() not in TRUE_WORDS | FALSE_WORDS})
            if bad:
                problems.append(f"{where}: a bool field's codes must map to true/false, found {bad}")
        else:
            problems.append(f"{where}: only category and bool fields take codes, {target.name!r} is {target.type}")
    if column.format is not None and target.type != "date":
        problems.append(f"{where}: only date fields take a format, {target.name!r} is {target.type}")
    return problems


def _missing(values: pd.Series, markers: tuple[str, ...]) -> pd.Series:
    text = values.astype("string").str.strip()
    return (values.isna() | text.isna() | (text == "") | text.isin(list(markers))).astype(bool)


def _read_field(
    values: pd.Series, column: ColumnMapping, target: SchemaField, markers: tuple[str, ...], report: QualityReport
) -> tuple[pd.Series, pd.Series]:
    """(canonical values, mask of records whose value is unusable); missing stays missing."""
    missing = _missing(values, (*markers, *column.missing))
    present = values.where(~missing)
    bad = pd.Series(False, index=values.index)
    name = target.name
    if target.type in ("float", "int"):
        numbers = pd.to_numeric(present, errors="coerce").astype(np.float64)
        bad = numbers.isna() & ~missing
        report.add(f"{name}: not a number", bad)
        if column.unit is not None and target.unit:
            numbers = pd.Series(units().Quantity(numbers.to_numpy(), column.unit).to(target.unit).magnitude, index=values.index)
        below, above = out_of_range(numbers, target.min, target.max)
        if target.min is not None:
            report.add(f"{name}: below minimum {target.min:g} {target.unit}".rstrip(), below)
        if target.max is not None:
            report.add(f"{name}: above maximum {target.max:g} {target.unit}".rstrip(), above)
        return numbers.where(~(below | above)), bad | below | above
    text = present.astype("string").str.strip()
    if target.type == "category":
        codes = text.map(lambda v: column.codes.get(v, v) if column.codes else v, na_action="ignore")
        bad = (~codes.isin(list(target.codes)) & ~missing).astype(bool)
        report.add(f"{name}: unknown code", bad)
        return codes.where(~bad).astype("string"), bad
    if target.type == "bool":
        mapped = text.map(lambda v: column.codes.get(v, v) if column.codes else v, na_action="ignore").str.lower()
        result = mapped.map(lambda v: 1.0 if v in TRUE_WORDS else 0.0 if v in FALSE_WORDS else np.nan, na_action="ignore")
        result = pd.to_numeric(result, errors="coerce").astype(np.float64)
        bad = (result.isna() & ~missing).astype(bool)
        report.add(f"{name}: not a yes/no value", bad)
        return result, bad
    if target.type == "date":
        parsed = pd.to_datetime(text, format=column.format, errors="coerce")
        bad = (parsed.isna() & ~missing).astype(bool)
        report.add(f"{name}: date does not parse" + (f" as {column.format}" if column.format else ""), bad)
        return parsed, bad
    return text, bad  # string identifiers pass through


def harmonise(frame: pd.DataFrame, schema: Schema, mapping: TableMapping, *, source: str) -> Harmonised:
    """Canonical records (derived features included) and the quality report; excluded records are dropped (or the load fails)."""
    check_mapping(mapping, schema, [str(c) for c in frame.columns], source=source)
    frame = frame.reset_index(drop=True)
    report = QualityReport(total=len(frame))
    selector = _version_selector(frame, schema, mapping)
    result = pd.DataFrame({"__row": np.arange(len(frame))})
    unusable = pd.Series(False, index=frame.index)
    for target in schema.declared:
        chosen = [(mask, version.columns[target.name]) for mask, version in selector if target.name in version.columns]
        base = mapping.columns.get(target.name)
        if base is None and not chosen:
            result[target.name] = pd.Series(np.nan, index=frame.index)
            continue
        covered = pd.Series(False, index=frame.index)
        values: pd.Series | None = None
        for mask, column in chosen:
            part, bad = _read_field(frame.loc[mask, column.column], column, target, mapping.missing, report)
            values = part if values is None else values.combine_first(part)
            unusable |= bad.reindex(frame.index, fill_value=False)
            covered |= mask
        if base is not None and not covered.all():
            rest = ~covered
            part, bad = _read_field(frame.loc[rest, base.column], base, target, mapping.missing, report)
            values = part if values is None else values.combine_first(part)
            unusable |= bad.reindex(frame.index, fill_value=False)
        if values is None:  # pragma: no cover - one of the two branches above always runs
            raise ConfigError(source, [f"field {target.name!r} could not be read"])
        values = values.reindex(frame.index)
        result[target.name] = values
        if target.required:
            absent = values.isna() & ~unusable
            report.add(f"{target.name}: missing (required)", absent)
            unusable |= absent
    dup = duplicates(result.loc[~unusable], mapping.unique).reindex(frame.index, fill_value=False)
    report.add(f"duplicate of an earlier record ({', '.join(mapping.unique)})", dup)
    unusable |= dup
    if mapping.on_error == "fail" and unusable.any():
        raise ConfigError(
            source, [f"{int(unusable.sum())} record(s) fail quality rules (quality.on_error = 'fail'):", *report.lines()[1:]]
        )
    kept = result.loc[~unusable].reset_index(drop=True)
    for target in schema.declared:
        if target.type == "category":
            kept[target.name] = pd.Categorical(kept[target.name], categories=list(target.codes))
    report.kept = len(kept)
    return Harmonised(add_derived(kept, schema), report)


def _version_selector(frame: pd.DataFrame, schema: Schema, mapping: TableMapping) -> list[tuple[pd.Series, MappingVersion]]:
    """For each version, the records whose date (read with the base mapping) falls in its period."""
    if not mapping.versions or mapping.date_field is None:
        return []
    column = mapping.columns[mapping.date_field]
    dates, _ = _read_field(frame[column.column], column, schema.by_name(mapping.date_field), mapping.missing, QualityReport())
    days = pd.to_datetime(dates).dt.date
    selected = []
    for version in mapping.versions:
        mask = days.notna()
        if version.start is not None:
            mask &= days >= version.start
        if version.end is not None:
            mask &= days <= version.end
        selected.append((mask.fillna(False).astype(bool), version))
    return selected


def read_naively(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The baseline: the i-th local column is taken as the i-th declared field, values as written.

    Derived features are then computed from these naive values, as a platform would compute them
    from the pooled files, so both views offer the same features.
    """
    columns = list(frame.columns)
    result = pd.DataFrame({"__row": np.arange(len(frame))})
    for index, target in enumerate(schema.declared):
        raw = frame[columns[index]].reset_index(drop=True) if index < len(columns) else pd.Series(np.nan, index=result.index)
        if target.type in ("float", "int"):
            result[target.name] = pd.to_numeric(raw, errors="coerce").astype(np.float64)
        elif target.type == "bool":
            text = raw.astype("string").str.strip().str.lower()
            result[target.name] = text.map(
                lambda v: 1.0 if v in TRUE_WORDS else 0.0 if v in FALSE_WORDS else np.nan, na_action="ignore"
            )
            result[target.name] = pd.to_numeric(result[target.name], errors="coerce")
        elif target.type == "category":
            text = raw.astype("string").str.strip()
            result[target.name] = pd.Categorical(text.where(text.isin(list(target.codes))), categories=list(target.codes))
        else:
            result[target.name] = raw.astype("string")
    labelled = result.loc[result[schema.target].notna()] if schema.target is not None else result
    return add_derived(labelled.reset_index(drop=True), schema)
