"""Reading a node's local data: a CSV or Parquet file, or a SQL query on an SQLite file.

CSV is read as text, so that local missing-value markers and codes reach the
mapping as written, not as pandas guesses them.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pandas as pd

from federation.errors import ConfigError

FORMATS = ("csv", "parquet", "sqlite")


def detect_format(path: Path, declared: str | None) -> str:
    if declared:
        return declared
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("csv", "txt"):
        return "csv"
    if suffix in ("parquet", "pq"):
        return "parquet"
    if suffix in ("sqlite", "sqlite3", "db"):
        return "sqlite"
    raise ConfigError(str(path), [f"cannot tell the format from suffix {path.suffix!r}; set data.format to one of {FORMATS}"])


def read_table(path: Path, *, fmt: str | None = None, query: str | None = None) -> pd.DataFrame:
    """Load the whole local table; errors name the file and what went wrong."""
    if not path.is_file():
        raise ConfigError(str(path), ["data file not found"])
    kind = detect_format(path, fmt)
    if kind == "sqlite" and not query:
        raise ConfigError(str(path), ["data.query: an SQLite source needs a SQL query (e.g. SELECT * FROM records)"])
    if kind != "sqlite" and query:
        raise ConfigError(str(path), [f"data.query: only SQLite sources take a query, this is {kind}"])
    try:
        if kind == "csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if kind == "parquet":
            return pd.read_parquet(path)
        uri = f"file:{path}?mode=ro"  # a node only ever reads its source
        with closing(sqlite3.connect(uri, uri=True)) as db:
            return pd.read_sql_query(str(query), db)
    except (OSError, ValueError, pd.errors.ParserError, sqlite3.Error) as error:
        raise ConfigError(str(path), [f"cannot be read as {kind}: {error}"]) from error
