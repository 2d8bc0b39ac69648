"""federation.vertical.align: every party orders the shared firms and splits them the same way, alone."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from psi_keys import firm_codes

from federation.errors import InvalidRequest
from federation.vertical.align import TEST, TRAIN, VALIDATION, aligned, roles


def test_each_party_aligns_its_own_records_to_the_shared_order_whatever_its_local_order() -> None:
    keys = firm_codes(50, random.Random(1))
    shared = sorted(keys[10:40])
    for seed in range(3):
        rng = random.Random(seed)
        local = rng.sample(keys, len(keys))
        by_row = [*local, local[12]]  # a duplicate record: the first copy counts
        frame = pd.DataFrame({"__row": np.arange(len(by_row)), "value": [float(keys.index(k)) for k in by_row]})
        frame = frame[frame["__row"] != local.index(shared[3])]  # a record the quality rules dropped
        out = aligned(frame, by_row, shared, ["value"])
        expected = [float(keys.index(k)) for k in shared]
        expected[3] = np.nan
        assert np.array_equal(out["value"].to_numpy(), np.array(expected), equal_nan=True)


def test_a_key_list_that_is_not_this_runs_intersection_is_refused() -> None:
    keys = firm_codes(10, random.Random(2))
    frame = pd.DataFrame({"__row": np.arange(5), "value": np.arange(5.0)})
    with pytest.raises(InvalidRequest, match="not among this party's keys"):
        aligned(frame, keys[:5], sorted(keys[3:8]), ["value"])
    with pytest.raises(InvalidRequest, match="sorted"):
        aligned(frame, keys[:5], keys[:3][::-1], ["value"])


def test_the_split_is_the_same_for_every_party_and_changes_with_the_seed() -> None:
    shared = sorted(firm_codes(2000, random.Random(3)))
    first = roles(shared, seed="run-1", test_fraction=0.3, validation_fraction=0.15)
    again = roles(list(shared), seed="run-1", test_fraction=0.3, validation_fraction=0.15)
    other = roles(shared, seed="run-2", test_fraction=0.3, validation_fraction=0.15)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert (first == TEST).sum() == 600 and (first == VALIDATION).sum() == 300 and (first == TRAIN).sum() == 1100
    assert 0.2 < np.mean(first[:1000] == TEST) < 0.4  # not a block of the sorted order
    with pytest.raises(InvalidRequest, match="fractions"):
        roles(shared, seed="s", test_fraction=0.6, validation_fraction=0.5)


def test_a_partys_columns_are_logged_imputed_and_standardised_from_its_training_rows_only() -> None:
    from federation.vertical.features import prepare

    frame = pd.DataFrame({"intake": [10.0, 100.0, np.nan, 1000.0, 1e6], "delta": [-1.0, 0.0, 1.0, 2.0, 3.0]})
    train = np.array([True, True, True, True, False])  # the last firm is a test firm: its value must not move the scaling
    out = prepare(frame, ["intake", "delta"], train)
    assert np.isclose(out[2, 0], out[1, 0])  # the missing cell gets the training rows' median, log1p(100)
    assert abs(out[train, 0].mean()) < 1e-12 and abs(out[train, 0].std() - 1) < 1e-12
    assert abs(out[train, 1].mean()) < 1e-12 and out[4, 1] > out[3, 1]  # a column with negatives is not logged
