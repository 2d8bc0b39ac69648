"""federation.data.derived: calendar features and lags each node computes after harmonisation (pure, no network)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.data.bounded_stats import to_vector
from federation.data.derived import add_derived, calendar, lag
from federation.data.encoding import encode, encoded_columns, regression_targets, standardise
from federation.data.mapping import ColumnMapping, TableMapping, harmonise, read_naively
from federation.data.schema import Schema, load_schema
from federation.errors import ConfigError, InvalidRequest

SCHEMA_TOML = """
name = "derived"
target = "violation"

[[field]]
name = "firm_id"
type = "string"

[[field]]
name = "inspection_date"
type = "date"

[[field]]
name = "cod"
type = "float"
unit = "mg/L"
min = 0.0
max = 5000.0

[[field]]
name = "violation"
type = "bool"

[[derived]]
name = "weekday_sin"
kind = "day_of_week_sin"
source = "inspection_date"

[[derived]]
name = "month_cos"
kind = "month_cos"
source = "inspection_date"

[[derived]]
name = "cod_previous"
kind = "lag"
source = "cod"
entity = "firm_id"
order = "inspection_date"

[[derived]]
name = "violation_previous"
kind = "lag"
source = "violation"
entity = "firm_id"
order = "inspection_date"
periods = 1
"""

DERIVED = ("weekday_sin", "month_cos", "cod_previous", "violation_previous")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schema.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def schema(tmp_path: Path) -> Schema:
    return load_schema(write(tmp_path, SCHEMA_TOML))


def on_circle(sin: np.ndarray, cos: np.ndarray) -> np.ndarray:
    return np.stack([sin, cos], axis=1)


# -- calendar ------------------------------------------------------------------


def test_monday_is_the_start_of_the_week_circle_and_sunday_its_neighbour() -> None:
    days = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-07", "2024-01-04"]))  # Mon, Tue, Sun, Thu
    points = on_circle(calendar(days, "day_of_week_sin"), calendar(days, "day_of_week_cos"))
    np.testing.assert_allclose(points[0], [0.0, 1.0], atol=1e-12)
    monday_tuesday = np.linalg.norm(points[0] - points[1])
    monday_sunday = np.linalg.norm(points[0] - points[2])
    assert monday_sunday == pytest.approx(monday_tuesday)
    assert monday_sunday < np.linalg.norm(points[0] - points[3])


def test_december_is_next_to_january_on_the_month_circle() -> None:
    days = pd.Series(pd.to_datetime(["2024-01-01", "2023-12-31", "2024-07-15", "2024-01-31", "2024-02-01"]))
    points = on_circle(calendar(days, "month_sin"), calendar(days, "month_cos"))
    np.testing.assert_allclose(points[0], [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(np.hypot(points[:, 0], points[:, 1]), 1.0)
    new_year = np.linalg.norm(points[0] - points[1])
    assert new_year == pytest.approx(2 * np.sin(np.pi / 12))  # one month apart, like any two neighbouring months
    assert new_year == pytest.approx(np.linalg.norm(points[3] - points[4]))
    assert new_year < np.linalg.norm(points[0] - points[2]) / 3  # January and July are opposite


def test_a_missing_date_gives_missing_calendar_features() -> None:
    days = pd.Series(pd.to_datetime(["2024-03-05", None]))
    values = calendar(days, "month_sin")
    assert np.isfinite(values[0]) and np.isnan(values[1])


def test_an_unknown_calendar_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown calendar kind"):
        calendar(pd.Series(pd.to_datetime(["2024-01-01"])), "year_sin")


# -- lags ----------------------------------------------------------------------


def lag_frame() -> pd.DataFrame:
    """Rows out of date order, two firms, and a tie (firm a twice on 2024-03-01)."""
    return pd.DataFrame(
        {
            "__row": [0, 1, 2, 3, 4, 5, 6],
            "firm": ["a", "b", "a", "a", "b", "a", "b"],
            "day": pd.to_datetime(
                ["2024-03-01", "2024-02-01", "2024-01-01", "2024-05-01", "2024-01-15", "2024-03-01", "2024-03-01"]
            ),
            "cod": [30.0, 200.0, 10.0, 50.0, 100.0, 40.0, 300.0],
        }
    )


def test_a_lag_takes_the_same_entitys_previous_record_by_date_and_breaks_ties_by_file_order() -> None:
    frame = lag_frame()
    result = lag(frame["cod"], frame["firm"], frame["day"], ties=frame["__row"].to_numpy(), periods=1)
    # firm a by date: row 2 (Jan, 10), row 0 (1 Mar, 30), row 5 (1 Mar, 40: after row 0 in the file), row 3 (May, 50)
    # firm b by date: row 4 (15 Jan, 100), row 1 (Feb, 200), row 6 (Mar, 300)
    expected = [10.0, 100.0, np.nan, 40.0, np.nan, 30.0, 200.0]
    np.testing.assert_array_equal(result, expected)


def test_the_first_k_records_of_an_entity_have_no_lag() -> None:
    frame = lag_frame()
    result = lag(frame["cod"], frame["firm"], frame["day"], ties=frame["__row"].to_numpy(), periods=2)
    expected = [np.nan, np.nan, np.nan, 30.0, np.nan, 10.0, 100.0]
    np.testing.assert_array_equal(result, expected)
    beyond = lag(frame["cod"], frame["firm"], frame["day"], ties=frame["__row"].to_numpy(), periods=5)
    assert np.isnan(beyond).all()


def test_a_lag_never_looks_forward() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        lag(pd.Series([1.0]), pd.Series(["a"]), pd.Series(pd.to_datetime(["2024-01-01"])), ties=np.arange(1), periods=0)


def test_records_without_an_entity_or_a_date_have_no_lag_and_are_no_ones_history() -> None:
    frame = pd.DataFrame(
        {
            "firm": ["a", None, "a", "a"],
            "day": pd.to_datetime(["2024-01-01", "2024-01-02", None, "2024-01-03"]),
            "cod": [1.0, 2.0, 3.0, 4.0],
        }
    )
    result = lag(frame["cod"], frame["firm"].astype("string"), frame["day"], ties=np.arange(4), periods=1)
    np.testing.assert_array_equal(result, [np.nan, np.nan, np.nan, 1.0])


def test_a_missing_previous_value_is_not_filled_from_an_older_record() -> None:
    frame = pd.DataFrame(
        {"firm": ["a"] * 3, "day": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]), "cod": [1.0, None, 3.0]}
    )
    result = lag(frame["cod"], frame["firm"], frame["day"], ties=np.arange(3), periods=1)
    np.testing.assert_array_equal(result, [np.nan, 1.0, np.nan])


records = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 6), st.floats(0, 100, allow_nan=False)), min_size=1, max_size=30
)


@settings(max_examples=60, deadline=None)
@given(records, st.integers(1, 3), st.randoms(use_true_random=False))
def test_a_lag_depends_only_on_each_records_own_history(rows: list[tuple[str, int, float]], k: int, rng: random.Random) -> None:
    frame = pd.DataFrame(
        {
            "__row": np.arange(len(rows)),
            "firm": [r[0] for r in rows],
            "day": pd.Timestamp("2024-01-01") + pd.to_timedelta([r[1] for r in rows], unit="D"),
            "cod": [r[2] for r in rows],
        }
    )

    def lags(f: pd.DataFrame) -> pd.Series:
        values = lag(f["cod"], f["firm"], f["day"], ties=f["__row"].to_numpy(), periods=k)
        return pd.Series(values, index=f["__row"].to_numpy()).sort_index()

    result = lags(frame)
    # Shuffling the rows of the frame changes nothing for any record (ties follow __row, which travels with it).
    order = list(range(len(frame)))
    rng.shuffle(order)
    pd.testing.assert_series_equal(lags(frame.iloc[order].reset_index(drop=True)), result)
    # Reference, record by record: the k-th previous record of the same firm by (day, __row).
    for i, (firm, day, _) in enumerate(rows):
        history = sorted(
            (j for j, (f, d, _) in enumerate(rows) if f == firm and (d, j) < (day, i)), key=lambda j: (rows[j][1], j)
        )
        expected = rows[history[-k]][2] if len(history) >= k else np.nan
        assert result[i] == expected or (np.isnan(result[i]) and np.isnan(expected))
    # Changing what happens later (values of the last day's records) changes no earlier record's lag.
    last = frame["day"].max()
    later = frame.assign(cod=frame["cod"].where(frame["day"] < last, -1.0))
    earlier_records = frame.loc[frame["day"] < last, "__row"].to_numpy()
    pd.testing.assert_series_equal(lags(later)[earlier_records], result[earlier_records])


# -- in harmonisation ----------------------------------------------------------

LOCAL = pd.DataFrame(
    {
        "Firm": ["a", "b", "a", "a", "b"],
        "Date": ["2024-03-01", "2024-02-01", "2024-01-01", "2024-12-31", "bad date"],
        "COD_gL": ["0.03", "0.2", "0.01", "0.05", "0.1"],
        "Violation": ["yes", "no", "no", "yes", "no"],
    }
)
MAPPING = TableMapping(
    columns={
        "firm_id": ColumnMapping("Firm"),
        "inspection_date": ColumnMapping("Date", format="%Y-%m-%d"),
        "cod": ColumnMapping("COD_gL", unit="g/L"),
        "violation": ColumnMapping("Violation"),
    }
)


def test_harmonise_adds_the_derived_columns_on_canonical_values(schema: Schema) -> None:
    result = harmonise(LOCAL, schema, MAPPING, source="test")
    frame = result.frame
    assert result.report.kept == 4  # the record with the bad date is excluded, and so is no one's history
    assert list(frame.columns) == ["__row", *schema.names]
    # firm a by date: row 2 (Jan, 10 mg/L, no), row 0 (Mar, 30, yes), row 3 (Dec, 50, yes); lags in mg/L, not g/L
    by_row = frame.set_index("__row")
    assert by_row.loc[0, "cod_previous"] == pytest.approx(10.0)
    assert by_row.loc[3, "cod_previous"] == pytest.approx(30.0)
    assert np.isnan(by_row.loc[2, "cod_previous"]) and np.isnan(by_row.loc[1, "cod_previous"])
    # the previous outcome is allowed as a feature: strictly earlier, never the record's own
    assert by_row.loc[0, "violation_previous"] == 0.0 and by_row.loc[3, "violation_previous"] == 1.0
    assert by_row.loc[0, "month_cos"] == pytest.approx(np.cos(2 * np.pi * 2 / 12))


def test_the_encoding_and_the_harmonised_frame_agree_on_derived_features(schema: Schema) -> None:
    frame = harmonise(LOCAL, schema, MAPPING, source="test").frame
    features = schema.feature_names
    assert features == ("cod", *DERIVED)
    assert encoded_columns(schema, features) == features
    matrix = encode(frame, schema, features)
    assert matrix.shape == (len(frame), len(features))
    assert np.isnan(matrix[:, features.index("cod_previous")]).sum() == 2  # the first record of each firm
    assert np.isfinite(standardise(matrix, [0.0] * len(features), [1.0] * len(features))).all()
    vector = to_vector(frame, schema, features, cap=100.0)  # derived fields have a range, so they can be summed securely
    assert vector[features.index("cod_previous")] == pytest.approx(2 / 100.0)  # only present values are counted


def test_the_naive_view_derives_the_same_features_from_naive_values(schema: Schema) -> None:
    naive = read_naively(LOCAL[["Firm", "Date", "COD_gL", "Violation"]], schema)
    assert set(DERIVED) <= set(naive.columns)
    by_row = naive.set_index("__row")
    assert by_row.loc[0, "cod_previous"] == pytest.approx(0.01)  # in g/L as written: no unit conversion
    assert np.isnan(by_row.loc[4, "weekday_sin"])


def test_add_derived_leaves_the_rows_and_the_input_alone(schema: Schema) -> None:
    frame = harmonise(LOCAL, schema, MAPPING, source="test").frame.drop(columns=list(DERIVED))
    before = frame.copy()
    shuffled = frame.sample(frac=1.0, random_state=3)
    result = add_derived(shuffled, schema)
    pd.testing.assert_frame_equal(frame, before)
    assert list(result["__row"]) == list(shuffled["__row"])
    again = add_derived(frame, schema).set_index("__row").sort_index()
    pd.testing.assert_frame_equal(result.set_index("__row").sort_index(), again)


def test_a_mapping_may_not_read_a_derived_field_from_a_column(schema: Schema) -> None:
    columns = {**MAPPING.columns, "cod_previous": ColumnMapping("COD_gL")}
    with pytest.raises(ConfigError) as caught:
        harmonise(LOCAL, schema, TableMapping(columns=columns, unique=("cod_previous",)), source="nodes/x.toml")
    text = str(caught.value)
    assert "data.columns.cod_previous: 'cod_previous' is derived by the schema" in text
    assert "quality.unique: 'cod_previous' is derived" in text


# -- the schema ------------------------------------------------------------------


def test_derived_fields_are_ordinary_float_fields_and_survive_a_round_trip(schema: Schema) -> None:
    assert schema.names[-4:] == DERIVED
    assert [f.name for f in schema.declared] == ["firm_id", "inspection_date", "cod", "violation"]
    previous = schema.by_name("cod_previous")
    assert (previous.type, previous.unit, previous.min, previous.max, previous.required) == ("float", "mg/L", 0.0, 5000.0, False)
    assert (schema.by_name("violation_previous").min, schema.by_name("violation_previous").max) == (0.0, 1.0)
    assert (schema.by_name("weekday_sin").min, schema.by_name("weekday_sin").max) == (-1.0, 1.0)
    dumped = schema.model_dump()
    assert [f["name"] for f in dumped["field"]] == ["firm_id", "inspection_date", "cod", "violation"]
    assert Schema.model_validate(dumped) == schema
    assert Schema.model_validate_json(schema.model_dump_json()) == schema


def test_a_numeric_target_is_a_regression_schema(tmp_path: Path) -> None:
    text = SCHEMA_TOML.replace('target = "violation"', 'target = "cod"')
    loaded = load_schema(write(tmp_path, text))
    assert loaded.target == "cod" and "cod" not in loaded.feature_names and "cod_previous" in loaded.feature_names


LAG = '\n[[derived]]\nname = "{name}"\nkind = "lag"\nsource = "{source}"\nentity = "{entity}"\norder = "{order}"\n'


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            '\n[[derived]]\nname = "m"\nkind = "month_sine"\nsource = "inspection_date"\n',
            "derived[4].kind: 'm': unknown kind (did you mean 'month_sin'?)",
        ),
        (
            '\n[[derived]]\nname = "m"\nkind = "month_sin"\nsource = "cod"\n',
            "derived[4].source: 'm': month_sin needs a date field, 'cod' is float",
        ),
        (
            '\n[[derived]]\nname = "m"\nkind = "month_sin"\nsource = "inspection_date"\nperiods = 2\n',
            "derived[4].periods: 'm': only a lag takes 'periods'",
        ),
        (
            '\n[[derived]]\nname = "cod"\nkind = "month_sin"\nsource = "inspection_date"\n',
            "derived[4].name: 'cod': is already a field of the schema",
        ),
        (
            '\n[[derived]]\nname = "month_cos"\nkind = "month_cos"\nsource = "inspection_date"\n',
            "derived[4].name: 'month_cos': is defined twice",
        ),
        (
            '\n[[derived]]\nname = "l"\nkind = "lag"\nsource = "cod"\norder = "inspection_date"\n',
            "derived[4].entity: 'l': a lag needs 'entity'",
        ),
        (
            '\n[[derived]]\nname = "l"\nkind = "lag"\nsource = "cod"\nentity = "firm_id"\n',
            "derived[4].order: 'l': a lag needs 'order'",
        ),
        (
            LAG.format(name="l", source="cod", entity="firm", order="inspection_date"),
            "derived[4].entity: 'l': 'firm' is not a field of the schema (did you mean 'firm_id'?)",
        ),
        (
            LAG.format(name="l", source="cod", entity="firm_id", order="cod"),
            "derived[4].order: 'l': the order must be a date field, 'cod' is float",
        ),
        (
            LAG.format(name="l", source="firm_id", entity="firm_id", order="inspection_date"),
            "derived[4].source: 'l': a lag needs a float, int or bool field",
        ),
        (
            LAG.format(name="l", source="cod_previous", entity="firm_id", order="inspection_date"),
            "'cod_previous' is itself derived",
        ),
        (
            LAG.format(name="l", source="cod", entity="firm_id", order="inspection_date") + "periods = 0\n",
            "derived[4].periods: 'l': periods must be at least 1",
        ),
        (
            LAG.format(name="l", source="cod", entity="firm_id", order="inspection_date") + "lookahead = 1\n",
            "derived[4].lookahead: unknown field",
        ),
    ],
)
def test_inconsistent_derived_entries_are_refused_with_the_file_and_the_entry(tmp_path: Path, extra: str, expected: str) -> None:
    path = write(tmp_path, SCHEMA_TOML + extra)
    with pytest.raises(ConfigError) as caught:
        load_schema(path)
    assert caught.value.path == str(path)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_every_problem_of_every_derived_entry_is_reported_at_once(tmp_path: Path) -> None:
    extra = '\n[[derived]]\nname = "a"\nkind = "weekday"\nsource = "x"\n\n[[derived]]\nname = "b"\nkind = "lag"\nsource = "nope"\nperiods = -1\n'
    with pytest.raises(ConfigError) as caught:
        load_schema(write(tmp_path, SCHEMA_TOML + extra))
    locations = sorted(p.split(":")[0] for p in caught.value.problems)
    assert locations == ["derived[4].kind", "derived[5].entity", "derived[5].order", "derived[5].periods", "derived[5].source"]


# -- regression targets ----------------------------------------------------------


def test_regression_targets_are_finite_float32() -> None:
    values = regression_targets(pd.DataFrame({"cod": [1.5, 2.0, 0.0]}), "cod")
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, [1.5, 2.0, 0.0])
    assert regression_targets(pd.DataFrame({"n": pd.Series([1, 2], dtype="Int64")}), "n").tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, np.nan, 2.0], "1 of 3 record(s) missing, not a number or not finite"),
        ([1.0, np.inf], "1 of 2 record(s)"),
        (["1.0", "high"], "1 of 2 record(s)"),
        ([1.0, 1e300], "too large for float32"),
    ],
)
def test_a_regression_target_that_is_not_a_finite_number_is_an_error_naming_the_column(
    values: list[object], expected: str
) -> None:
    with pytest.raises(InvalidRequest, match="'cod'") as caught:
        regression_targets(pd.DataFrame({"cod": values}), "cod")
    assert expected in str(caught.value)
    assert "high" not in str(caught.value)  # no record value in the message


def test_a_regression_target_must_be_a_column() -> None:
    with pytest.raises(InvalidRequest, match="'cod' is not a column"):
        regression_targets(pd.DataFrame({"flow": [1.0]}), "cod")


def test_a_derived_feature_reads_its_source_so_a_policy_denying_the_source_denies_it(schema: Schema) -> None:
    import datetime as dt

    from federation.policy import Policy, Request, decide

    assert schema.read_from(("cod_previous", "violation")) == ("cod_previous", "violation", "cod")
    assert schema.read_from(("weekday_sin", "month_cos", "cod")) == ("weekday_sin", "month_cos", "cod", "inspection_date")
    assert schema.read_from(("cod", "cod_previous")) == ("cod", "cod_previous")  # entity and order only group and sort
    policy = Policy.model_validate(
        {
            "party": "north",
            "rule": [{"name": "r", "recipients": ["city"], "purposes": ["p"], "release": "update", "columns": {"deny": ["cod"]}}],
        }
    )
    asked = Request(caller="city", purpose="p", release="update", columns=schema.read_from(("cod_previous", "violation")))
    decision = decide(policy, asked, today=dt.date(2026, 1, 1))
    assert not decision.allowed and any("denies column(s) ['cod']" in r for r in decision.reasons)
