"""federation.data.mapping.harmonise: local columns become typed canonical fields, or every problem is named."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.data.mapping import harmonise
from federation.data.schema import Schema
from federation.errors import ConfigError

SCHEMA = Schema.model_validate(
    {
        "name": "inspections",
        "target": "violation",
        "field": [
            {"name": "cod", "type": "float", "unit": "mg/L"},
            {"name": "employees", "type": "int"},
            {"name": "industry", "type": "category", "codes": ["paper", "food", "metal"]},
            {"name": "note_score", "type": "float", "required": False},
            {"name": "violation", "type": "bool"},
        ],
    }
)
COLUMNS = {"cod": "COD_mgL", "employees": "staff", "industry": "sector", "violation": "found"}


def local_frame(**overrides: list[object]) -> pd.DataFrame:
    data: dict[str, list[object]] = {
        "firm_name": ["Firm 1", "Firm 2", "Firm 3"],
        "COD_mgL": [78.7, 103.4, 55.0],
        "staff": [103, 57, 12],
        "sector": ["paper", "food", "metal"],
        "found": [0, 1, 1],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def problems_of(frame: pd.DataFrame, columns: dict[str, str] = COLUMNS) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        harmonise(frame, SCHEMA, columns, source="north.toml")
    assert caught.value.path == "north.toml"
    return caught.value.problems


def test_local_columns_are_renamed_to_canonical_fields() -> None:
    result = harmonise(local_frame(), SCHEMA, COLUMNS, source="north.toml")
    assert list(result.columns) == ["cod", "employees", "industry", "violation"]
    np.testing.assert_allclose(result["cod"], [78.7, 103.4, 55.0])
    np.testing.assert_allclose(result["employees"], [103, 57, 12])
    assert result["violation"].tolist() == [0.0, 1.0, 1.0]
    assert list(result["industry"].cat.categories) == ["paper", "food", "metal"]
    assert result["industry"].tolist() == ["paper", "food", "metal"]


def test_unmapped_local_columns_never_reach_the_result() -> None:
    result = harmonise(local_frame(), SCHEMA, COLUMNS, source="north.toml")
    assert "firm_name" not in result.columns


def test_a_missing_local_column_is_reported_with_its_name() -> None:
    problems = problems_of(local_frame().drop(columns=["staff"]))
    assert len(problems) == 1
    assert problems[0].startswith("data.columns.employees: column 'staff' is not in the data")


def test_an_unmapped_required_field_is_reported() -> None:
    columns = {k: v for k, v in COLUMNS.items() if k != "cod"}
    assert problems_of(local_frame(), columns) == ["data.columns: required field 'cod' is not mapped to a local column"]


def test_an_unmapped_optional_field_is_left_out() -> None:
    result = harmonise(local_frame(), SCHEMA, COLUMNS, source="north.toml")
    assert "note_score" not in result.columns


def test_mapping_a_field_the_schema_lacks_is_reported() -> None:
    problems = problems_of(local_frame(), {**COLUMNS, "firm": "firm_name"})
    assert len(problems) == 1
    assert "['firm']" in problems[0] and "'inspections'" in problems[0]


def test_mapping_problems_are_reported_together() -> None:
    columns = {**COLUMNS, "cod": "COD", "firm": "firm_name"}
    del columns["employees"]
    problems = problems_of(local_frame(), columns)
    assert len(problems) == 3


def test_non_numeric_values_are_counted() -> None:
    problems = problems_of(local_frame(COD_mgL=["78.7", "n/a", "high"]))
    assert problems == ["'COD_mgL' -> cod: 2 value(s) are not numbers"]


def test_missing_numbers_are_not_problems() -> None:
    result = harmonise(local_frame(COD_mgL=[1.0, None, 3.0]), SCHEMA, COLUMNS, source="north.toml")
    assert math.isnan(result["cod"][1])


TRUE_WORDS = ["1", "true", "yes", "y", "t"]
FALSE_WORDS = ["0", "false", "no", "n", "f"]


def _spelled(word: str) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from([str.lower, str.upper, str.title]), st.sampled_from(["", " "])).map(
        lambda t: t[1] + t[0](word) + t[1]
    )


@given(
    st.lists(
        st.one_of(
            st.sampled_from(TRUE_WORDS).flatmap(_spelled).map(lambda s: (s, 1.0)),
            st.sampled_from(FALSE_WORDS).flatmap(_spelled).map(lambda s: (s, 0.0)),
            st.sampled_from([(True, 1.0), (False, 0.0), (1, 1.0), (0, 0.0), (1.0, 1.0), (0.0, 0.0)]),
        ),
        min_size=3,
        max_size=3,
    )
)
def test_bool_values_are_parsed(pairs: list[tuple[object, float]]) -> None:
    frame = local_frame(found=[value for value, _ in pairs])
    result = harmonise(frame, SCHEMA, COLUMNS, source="north.toml")
    assert result["violation"].tolist() == [expected for _, expected in pairs]


def test_values_that_are_not_booleans_are_counted() -> None:
    problems = problems_of(local_frame(found=["yes", "maybe", 2]))
    assert problems == ["'found' -> violation: 2 value(s) are not booleans"]


def test_a_code_outside_the_code_list_is_reported() -> None:
    problems = problems_of(local_frame(sector=["paper", "mining", "food"]))
    assert len(problems) == 1
    assert "'sector' -> industry" in problems[0]
    assert "['mining']" in problems[0]
    assert "['paper', 'food', 'metal']" in problems[0]


def test_value_problems_in_several_columns_are_reported_together() -> None:
    problems = problems_of(local_frame(COD_mgL=["x", 1, 2], sector=["paper", "oil", "food"], found=[0, 1, "?"]))
    assert len(problems) == 3
