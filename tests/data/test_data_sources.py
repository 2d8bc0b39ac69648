"""federation.data.sources: CSV and Parquet files load; anything else names the file and the problem."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from federation.data.sources import detect_format, read_table
from federation.errors import ConfigError

FRAME = pd.DataFrame({"cod": [1.5, 2.5, None], "industry": ["paper", "food", "metal"], "flag": [0, 1, 1]})


def test_csv_is_read_as_written_text(tmp_path: Path) -> None:
    """Values stay text, so local markers and codes reach the mapping as the department wrote them."""
    path = tmp_path / "local.csv"
    FRAME.to_csv(path, index=False)
    read = read_table(path)
    assert read.to_dict("list") == {"cod": ["1.5", "2.5", ""], "industry": ["paper", "food", "metal"], "flag": ["0", "1", "1"]}


def test_parquet_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "local.parquet"
    FRAME.to_parquet(path, engine="pyarrow", index=False)
    pd.testing.assert_frame_equal(read_table(path), FRAME)


@pytest.mark.parametrize(("name", "kind"), [("a.csv", "csv"), ("a.TXT", "csv"), ("a.parquet", "parquet"), ("a.PQ", "parquet")])
def test_format_follows_the_suffix(name: str, kind: str) -> None:
    assert detect_format(Path(name), None) == kind


def test_a_declared_format_overrides_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "export.dat"
    FRAME.to_parquet(path, engine="pyarrow", index=False)
    pd.testing.assert_frame_equal(read_table(path, fmt="parquet"), FRAME)


def test_an_unknown_suffix_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "local.xlsx"
    path.write_bytes(b"not a spreadsheet")
    with pytest.raises(ConfigError) as caught:
        read_table(path)
    assert caught.value.path == str(path)
    [problem] = caught.value.problems
    assert "'.xlsx'" in problem and "data.format" in problem


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.csv"
    with pytest.raises(ConfigError) as caught:
        read_table(path)
    assert caught.value.path == str(path)
    assert caught.value.problems == ["data file not found"]


def test_a_corrupt_parquet_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ConfigError) as caught:
        read_table(path)
    [problem] = caught.value.problems
    assert problem.startswith("cannot be read as parquet")


def test_an_empty_csv_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot be read as csv"):
        read_table(path)
