"""Reading a node's local data file: CSV or Parquet, chosen by suffix or by name."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from federation.errors import ConfigError

FORMATS = ("csv", "parquet")


def detect_format(path: Path, declared: str | None) -> str:
    if declared:
        return declared
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("csv", "txt"):
        return "csv"
    if suffix in ("parquet", "pq"):
        return "parquet"
    raise ConfigError(str(path), [f"cannot tell the format from suffix {path.suffix!r}; set data.format to one of {FORMATS}"])


def read_table(path: Path, *, fmt: str | None = None) -> pd.DataFrame:
    """Load the whole local table; errors name the file and what went wrong."""
    if not path.is_file():
        raise ConfigError(str(path), ["data file not found"])
    kind = detect_format(path, fmt)
    try:
        if kind == "csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise ConfigError(str(path), [f"cannot be read as {kind}: {error}"]) from error
