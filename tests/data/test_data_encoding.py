"""federation.data.encoding: the same input columns on every node, one-hot categories, imputed scaling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from federation.data.encoding import encode, encoded_columns, labels, standardise
from federation.data.mapping import ColumnMapping, TableMapping, harmonise
from federation.data.schema import Schema
from federation.errors import InvalidRequest

SCHEMA = Schema.model_validate(
    {
        "name": "inspections",
        "target": "violation",
        "field": [
            {"name": "cod", "type": "float"},
            {"name": "industry", "type": "category", "codes": ["paper", "food", "metal"]},
            {"name": "employees", "type": "int"},
            {"name": "violation", "type": "bool"},
        ],
    }
)
COLUMNS = TableMapping(columns={name: ColumnMapping(name) for name in ("cod", "industry", "employees", "violation")})


def harmonised(**data: list[object]) -> pd.DataFrame:
    """Harmonise with quality rules off the table: records with a missing required value are still kept here."""
    schema = Schema.model_validate(
        {**SCHEMA.model_dump(), "field": [{**f.model_dump(), "required": f.name == "violation"} for f in SCHEMA.field]}
    )
    return harmonise(pd.DataFrame(data), schema, COLUMNS, source="test").frame


FRAME = {
    "cod": [1.0, None, 3.0, 4.0],
    "industry": ["metal", "paper", "food", "paper"],
    "employees": [10, 20, 30, 40],
    "violation": [1, 0, 0, 1],
}


def test_encoded_columns_follow_feature_order_and_code_order() -> None:
    assert encoded_columns(SCHEMA, ["employees", "industry", "cod"]) == (
        "employees",
        "industry=paper",
        "industry=food",
        "industry=metal",
        "cod",
    )
    assert encoded_columns(SCHEMA, []) == ()


def test_an_unknown_feature_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as caught:
        encoded_columns(SCHEMA, ["cod", "firm_name"])
    assert "'firm_name'" in caught.value.public and "'inspections'" in caught.value.public


def test_categories_become_one_hot_in_code_order() -> None:
    matrix = encode(harmonised(**FRAME), SCHEMA, ["industry", "employees"])
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(
        matrix,
        [[0, 0, 1, 10], [1, 0, 0, 20], [0, 1, 0, 30], [1, 0, 0, 40]],
    )
    assert matrix.shape[1] == len(encoded_columns(SCHEMA, ["industry", "employees"]))


def test_missing_numbers_stay_nan_until_standardised() -> None:
    matrix = encode(harmonised(**FRAME), SCHEMA, ["cod"])
    assert np.isnan(matrix[1, 0])
    scaled = standardise(matrix, [2.0], [0.5])
    assert scaled[1, 0] == 0.0
    np.testing.assert_allclose(scaled[:, 0], [-2.0, 0.0, 2.0, 4.0])


def test_encode_with_no_features_has_no_columns() -> None:
    assert encode(harmonised(**FRAME), SCHEMA, []).shape == (4, 0)


def test_labels_are_float_targets() -> None:
    y = labels(harmonised(**FRAME), "violation")
    assert y.dtype == np.float32
    assert y.tolist() == [1.0, 0.0, 0.0, 1.0]


@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 20), st.integers(1, 5)),
        elements=st.one_of(st.floats(-1e3, 1e3, width=32), st.just(np.float32("nan"))),
    ),
    st.data(),
)
def test_standardise_imputes_nan_at_zero_and_scales_the_rest(matrix: np.ndarray, data: st.DataObject) -> None:
    width = matrix.shape[1]
    mean = data.draw(st.lists(st.floats(-100, 100), min_size=width, max_size=width))
    std = data.draw(st.lists(st.floats(0.1, 100), min_size=width, max_size=width))
    scaled = standardise(matrix, mean, std)
    assert scaled.dtype == np.float32
    assert not np.isnan(scaled).any()
    missing = np.isnan(matrix)
    assert (scaled[missing] == 0).all()
    expected = (matrix.astype(np.float64) - np.asarray(mean)) / np.asarray(std)
    np.testing.assert_allclose(scaled[~missing], expected[~missing], rtol=1e-4, atol=1e-3)


def test_a_missing_category_encodes_as_all_zeros() -> None:
    frame = harmonised(**{**FRAME, "industry": ["metal", None, "food", "paper"]})
    matrix = encode(frame, SCHEMA, ["industry"])
    np.testing.assert_array_equal(matrix, [[0, 0, 1], [0, 0, 0], [0, 1, 0], [1, 0, 0]])
