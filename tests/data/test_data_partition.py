"""federation.data.partition.split: deterministic, disjoint and complete train/test splits."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.data.partition import split


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"row": range(n), "value": [i * 0.5 for i in range(n)]})


sizes = st.integers(min_value=2, max_value=300)
fractions = st.floats(min_value=0.001, max_value=0.999)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@given(sizes, fractions, seeds)
def test_split_is_deterministic_for_a_seed(n: int, fraction: float, seed: int) -> None:
    first = split(frame(n), test_fraction=fraction, seed=seed)
    second = split(frame(n), test_fraction=fraction, seed=seed)
    pd.testing.assert_frame_equal(first[0], second[0])
    pd.testing.assert_frame_equal(first[1], second[1])


@given(sizes, fractions, seeds)
def test_split_is_disjoint_and_complete(n: int, fraction: float, seed: int) -> None:
    train, test = split(frame(n), test_fraction=fraction, seed=seed)
    train_rows, test_rows = set(train["row"]), set(test["row"])
    assert not train_rows & test_rows
    assert train_rows | test_rows == set(range(n))
    assert len(train) + len(test) == n


@given(sizes, fractions, seeds)
def test_each_side_keeps_at_least_one_row(n: int, fraction: float, seed: int) -> None:
    train, test = split(frame(n), test_fraction=fraction, seed=seed)
    assert len(train) >= 1 and len(test) >= 1


@given(st.integers(min_value=20, max_value=300), fractions, seeds)
def test_test_size_follows_the_fraction(n: int, fraction: float, seed: int) -> None:
    _, test = split(frame(n), test_fraction=fraction, seed=seed)
    assert abs(len(test) - n * fraction) <= 1


@given(sizes, fractions, seeds)
def test_rows_keep_their_values_and_order(n: int, fraction: float, seed: int) -> None:
    for part in split(frame(n), test_fraction=fraction, seed=seed):
        assert list(part.index) == list(range(len(part)))
        assert list(part["row"]) == sorted(part["row"])
        assert (part["value"] == part["row"] * 0.5).all()


def test_different_seeds_give_different_splits() -> None:
    splits = {tuple(split(frame(100), test_fraction=0.3, seed=s)[1]["row"]) for s in range(5)}
    assert len(splits) > 1


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_fraction_must_be_strictly_between_zero_and_one(fraction: float) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        split(frame(10), test_fraction=fraction, seed=0)


def test_a_redrawn_split_keeps_both_classes_in_the_nodes_proportion() -> None:
    import numpy as np

    from federation.data.partition import redrawn_test_rows

    rows = np.arange(1000, 1100)  # local positions of the records harmonisation kept
    labels = (np.arange(100) < 7).astype(float)  # 7 positives: an unstratified 30 % draw can miss them all
    for draw in range(1, 30):
        held = redrawn_test_rows(rows, labels, test_fraction=0.3, seed=[5, draw])
        assert set(held) <= set(rows) and len(held) == 2 + 28
        assert (labels[np.isin(rows, held)] == 1).sum() == 2
    assert not np.array_equal(
        redrawn_test_rows(rows, labels, test_fraction=0.3, seed=[5, 1]),
        redrawn_test_rows(rows, labels, test_fraction=0.3, seed=[5, 2]),
    )
    plain = redrawn_test_rows(rows, None, test_fraction=0.3, seed=[5, 1])  # a regression: no classes to keep
    assert len(plain) == 30 and np.array_equal(plain, np.sort(plain))
