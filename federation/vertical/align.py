"""Rows in the same order at every party, and the same split, without sending a row index.

After a PSI run every party holds the same sorted list of shared firm keys.
Each aligns its own harmonised records to that list, and each derives the
train / validation / test role of every firm from a keyed hash of the key
and the run's seed, so all parties agree on the split and nobody tells
anybody which row is which. The split is not stratified: stratifying needs
the labels, which only the label party holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from federation.errors import InvalidRequest

TRAIN, VALIDATION, TEST = 0, 1, 2
ROW = "__row"  # a harmonised record's position in the local table


def aligned(frame: pd.DataFrame, by_row: Sequence[str | None], shared: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """`columns` of the first local record of each shared firm, in the order of `shared`; NaN where quality rules dropped it."""
    if list(shared) != sorted(set(shared)):
        raise InvalidRequest("the shared keys must be distinct and sorted, as every party holds them")
    first: dict[str, int] = {}
    for position, key in enumerate(by_row):
        if key is not None and key not in first:
            first[key] = position
    missing = [k for k in shared if k not in first]
    if missing:
        raise InvalidRequest(f"{len(missing)} shared keys are not among this party's keys: not this run's intersection")
    wanted = np.array([first[k] for k in shared], dtype=np.int64)
    indexed = frame.set_index(ROW)[list(columns)]
    return indexed.reindex(wanted).reset_index(drop=True)


def roles(shared: Sequence[str], *, seed: str, test_fraction: float, validation_fraction: float) -> np.ndarray:
    """TRAIN, VALIDATION or TEST for each shared firm, the same at every party for the same keys and seed."""
    if not (0 < test_fraction < 1 and 0 <= validation_fraction < 1 and test_fraction + validation_fraction < 1):
        raise InvalidRequest(f"test {test_fraction} and validation {validation_fraction} fractions do not leave training rows")
    prefix = b"federation/vertical/v1/split\x00" + seed.encode() + b"\x00"
    ranks = np.array([int.from_bytes(hashlib.sha256(prefix + k.encode()).digest()[:8], "big") for k in shared], dtype=np.uint64)
    order = np.argsort(ranks, kind="stable")
    out = np.full(len(shared), TRAIN, dtype=np.int8)
    n_test = round(len(shared) * test_fraction)
    n_validation = round(len(shared) * validation_fraction)
    out[order[:n_test]] = TEST
    out[order[n_test : n_test + n_validation]] = VALIDATION
    return out
