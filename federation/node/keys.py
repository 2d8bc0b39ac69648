"""The firm key of each record, prepared on the node for private set intersection.

A node names in its manifest's `[keys]` the local column that holds the
firm's unified social credit code, and optionally a crosswalk file from its
own legacy number to the code. Keys are normalised and validated here under
the versioned rule (`psi.uscc`), so what is hashed is comparable across
parties while the local spellings never leave the node; invalid and
unmapped keys are counted for the quality report, never quoted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from federation.data.sources import read_table
from federation.errors import ConfigError
from federation.psi.uscc import KeyReport, normalise, problem

UNMAPPED = "not in the crosswalk"


@dataclass(frozen=True)
class Crosswalk:
    path: Path
    source: str  # the local number's column in the crosswalk file
    target: str  # the code's column


@dataclass(frozen=True)
class KeySource:
    """Where a node's firm keys are: a column of its data file, perhaps through a crosswalk."""

    column: str
    rule: str
    crosswalk: Crosswalk | None = None


@dataclass(frozen=True)
class FirmKeys:
    """The prepared key of each row of the data file (None: invalid or unmapped), and the counts."""

    by_row: tuple[str | None, ...]
    report: KeyReport

    @property
    def distinct(self) -> list[str]:
        return sorted({k for k in self.by_row if k is not None})


def _crosswalk(crosswalk: Crosswalk) -> dict[str, str]:
    table = read_table(crosswalk.path)
    missing = [c for c in (crosswalk.source, crosswalk.target) if c not in table.columns]
    if missing:
        raise ConfigError(
            str(crosswalk.path), [f"keys.crosswalk: no column {c!r} (columns: {list(table.columns)})" for c in missing]
        )
    mapping: dict[str, str] = {}
    for number, code in zip(table[crosswalk.source].astype(str), table[crosswalk.target].astype(str), strict=True):
        number = number.strip()
        if number in mapping and mapping[number] != code:
            raise ConfigError(str(crosswalk.path), ["keys.crosswalk: a local number maps to two different codes"])
        mapping[number] = code
    return mapping


def prepare_rows(table: pd.DataFrame, source: KeySource, *, where: str) -> FirmKeys:
    """Each row's key, normalised and checked under the rule; every row left out is counted by reason."""
    if source.column not in table.columns:
        raise ConfigError(where, [f"keys.column: the data has no column {source.column!r}"])
    raw = table[source.column].astype(str).tolist()
    mapping = _crosswalk(source.crosswalk) if source.crosswalk is not None else None
    report = KeyReport(rule=source.rule)
    seen: set[str] = set()
    by_row: list[str | None] = []
    for value in raw:
        report.total += 1
        if mapping is not None:
            mapped = mapping.get(value.strip())
            if mapped is None:
                report.invalid[UNMAPPED] += 1
                by_row.append(None)
                continue
            value = mapped
        code = normalise(value)
        why = problem(code)
        if why is not None:
            report.invalid[why] += 1
            by_row.append(None)
            continue
        report.valid += 1
        report.duplicates += code in seen
        seen.add(code)
        by_row.append(code)
    return FirmKeys(tuple(by_row), report)
