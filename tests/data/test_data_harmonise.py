"""Harmonisation of heterogeneous local records onto a canonical schema (pure, no network)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from federation.coordinator.negotiate import combine_histograms, histogram_quantile
from federation.data.mapping import ColumnMapping, MappingVersion, TableMapping, harmonise, read_naively
from federation.data.quality import histograms
from federation.data.schema import Schema, SchemaField
from federation.data.sources import read_table
from federation.errors import ConfigError

SCHEMA = Schema(
    name="test",
    target="bad",
    field=(
        SchemaField(name="firm", type="string"),
        SchemaField(name="day", type="date"),
        SchemaField(name="cod", type="float", unit="mg/L", min=0.0, max=1000.0),
        SchemaField(name="flow", type="float", unit="m^3/day", required=False),
        SchemaField(name="sector", type="category", codes=("chemical", "paper")),
        SchemaField(name="bad", type="bool"),
    ),
)


def local_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "FirmID": ["a", "b", "c", "d", "e", "a"],
            "Date": ["01/03/2024", "15/06/2024", "02/07/2024", "20/08/2024", "31/12/2024", "01/03/2024"],
            "COD_ugL": ["50000", "120000", "n/a", "-5000", "abc", "50000"],
            "Flow_Ls": ["1", "", "2", "0.5", "1", "1"],
            "Sector": ["C1", "C2", "PAP", "CHEM", "C1", "C1"],
            "Outcome": ["yes", "no", "no", "yes", "no", "yes"],
        }
    )


def mapping(**changes: object) -> TableMapping:
    base = {
        "firm": ColumnMapping("FirmID"),
        "day": ColumnMapping("Date", format="%d/%m/%Y"),
        "cod": ColumnMapping("COD_ugL", unit="ug/L", missing=("n/a",)),
        "flow": ColumnMapping("Flow_Ls", unit="L/s"),
        "sector": ColumnMapping("Sector", codes={"CHEM": "chemical", "PAP": "paper"}),
        "bad": ColumnMapping("Outcome"),
    }
    old_codes = MappingVersion(
        None, dt.date(2024, 6, 30), {"sector": ColumnMapping("Sector", codes={"C1": "chemical", "C2": "paper"})}
    )
    settings: dict[str, object] = {"columns": base, "versions": (old_codes,), "date_field": "day", "unique": ("firm", "day")}
    settings.update(changes)
    return TableMapping(**settings)  # type: ignore[arg-type]


def test_units_codes_versions_and_quality_together() -> None:
    result = harmonise(local_frame(), SCHEMA, mapping(), source="test")
    frame, report = result.frame, result.report
    assert report.total == 6 and report.kept == 2
    assert list(frame["firm"]) == ["a", "b"]
    assert list(frame["__row"]) == [0, 1]  # positions in the local table, for the split
    kept = frame.set_index("firm")
    assert kept.loc["a", "cod"] == pytest.approx(50.0)  # 50000 ug/L -> 50 mg/L
    assert kept.loc["a", "flow"] == pytest.approx(86.4)  # 1 L/s -> 86.4 m^3/day
    assert np.isnan(kept.loc["b", "flow"])  # optional and missing: kept, imputed later
    assert kept.loc["a", "sector"] == "chemical" and kept.loc["b", "sector"] == "paper"  # old code list before 2024-06-30
    assert kept.loc["a", "bad"] == 1.0 and kept.loc["b", "bad"] == 0.0
    assert report.reasons == {
        "cod: missing (required)": 1,  # "n/a" marker on c
        "cod: below minimum 0 mg/L": 1,  # d
        "cod: not a number": 1,  # e
        "sector: unknown code": 1,  # e: "C1" after the change date is not a code any more
        "duplicate of an earlier record (firm, day)": 1,  # the second "a"
    }


def test_the_new_code_list_applies_after_the_change_date() -> None:
    frame = local_frame().iloc[[2, 3]]  # July and August: new codes
    result = harmonise(frame.assign(COD_ugL=["1000", "2000"]), SCHEMA, mapping(), source="test")
    assert list(result.frame["sector"]) == ["paper", "chemical"]


def test_on_error_fail_refuses_with_the_counts() -> None:
    with pytest.raises(ConfigError) as caught:
        harmonise(local_frame(), SCHEMA, mapping(on_error="fail"), source="manifest.toml")
    assert "quality.on_error" in str(caught.value) and "cod: not a number" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"cod": ColumnMapping("COD", unit="ug/L")}, "data.columns.cod: column 'COD' is not in the data"),
        ({"cod": ColumnMapping("COD_ugL", unit="kg")}, "data.columns.cod: unit 'kg' cannot be converted to 'mg/L'"),
        ({"sector": ColumnMapping("Sector", codes={"CHEM": "chemicals"})}, "codes map to ['chemicals']"),
        ({"cod": ColumnMapping("COD_ugL", codes={"x": "y"})}, "only category and bool fields take codes"),
        ({"salary": ColumnMapping("Sector")}, "'salary' is not a field of schema"),
    ],
    ids=["missing-column", "unit-does-not-convert", "unknown-canonical-code", "codes-on-a-number", "unknown-field"],
)
def test_configuration_errors_name_the_field(change: dict[str, ColumnMapping], expected: str) -> None:
    columns = {**mapping().columns, **change}
    with pytest.raises(ConfigError) as caught:
        harmonise(local_frame(), SCHEMA, mapping(columns=columns), source="nodes/x.toml")
    assert caught.value.path == "nodes/x.toml"
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_an_unmapped_required_field_and_a_version_without_date_field() -> None:
    columns = {k: v for k, v in mapping().columns.items() if k != "cod"}
    with pytest.raises(ConfigError) as caught:
        harmonise(local_frame(), SCHEMA, mapping(columns=columns, date_field=None), source="m.toml")
    problems = " | ".join(caught.value.problems)
    assert "required field 'cod' is not mapped" in problems and "data.date_field" in problems


def test_naive_reading_matches_by_position_without_conversion() -> None:
    naive = read_naively(local_frame(), SCHEMA)
    assert naive["cod"].iloc[0] == 50000.0  # micrograms taken as milligrams
    assert naive["flow"].iloc[0] == 1.0  # litres per second taken as m^3/day
    assert naive["sector"].isna().all() or set(naive["sector"].dropna()) <= {"chemical", "paper"}
    assert naive["bad"].tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 1.0]


def test_sqlite_and_parquet_sources(tmp_path: Path) -> None:
    frame = local_frame()
    parquet = tmp_path / "d.parquet"
    frame.to_parquet(parquet)
    database = tmp_path / "d.sqlite"
    with sqlite3.connect(database) as db:
        frame.to_sql("records", db, index=False)
    from_parquet = read_table(parquet)
    from_sqlite = read_table(database, query="SELECT * FROM records WHERE Outcome = 'yes'")
    assert list(from_parquet.columns) == list(frame.columns) and len(from_parquet) == 6
    assert len(from_sqlite) == 3
    with pytest.raises(ConfigError, match="needs a SQL query"):
        read_table(database)
    with pytest.raises(ConfigError, match="cannot be read as sqlite"):
        read_table(database, query="SELECT * FROM nowhere")
    result = harmonise(from_sqlite, SCHEMA, mapping(), source="sqlite")
    assert result.report.total == 3


def test_histograms_add_up_across_nodes_and_give_quantiles() -> None:
    schema = Schema(
        name="h",
        target="bad",
        field=(SchemaField(name="x", type="float", min=0.0, max=10.0), SchemaField(name="bad", type="bool")),
    )
    rng = np.random.default_rng(0)
    parts = [pd.DataFrame({"x": rng.uniform(0, 10, n)}) for n in (500, 1500, 3000)]
    pooled = pd.concat(parts)
    from federation.replies import FeatureStats

    stats = [FeatureStats(("x",), (len(p),), (0.0,), (0.0,), histograms(p, schema, ("x",))) for p in parts]
    edges, counts = combine_histograms(stats)["x"]
    assert sum(counts) == len(pooled)
    assert counts == histograms(pooled, schema, ("x",))["x"][1]
    assert histogram_quantile(edges, counts, 0.5) == pytest.approx(float(np.median(pooled["x"])), abs=0.5)


def test_a_date_that_does_not_parse_is_a_counted_failure() -> None:
    frame = local_frame().assign(
        COD_ugL=["1000"] * 6, Date=["01/03/2024", "2024-03-01", "", "15/06/2024", "31/02/2024", "02/03/2024"]
    )
    result = harmonise(frame, SCHEMA, mapping(unique=()), source="test")
    assert result.report.reasons.get("day: date does not parse as %d/%m/%Y") == 2  # ISO date and 31 February
    assert result.report.reasons.get("day: missing (required)") == 1
    # without a usable date no dated version applies, so old local codes are unknown codes too
    assert result.report.reasons.get("sector: unknown code") == 3
    assert result.report.kept == 2
