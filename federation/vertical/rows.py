"""A party's inputs to a vertical run from its own records, and the label party's measures of the result.

Everything here runs on the party, on its own data: it aligns its
harmonised records to the shared keys, derives the split every party
derives, and prepares its columns on its own training rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from federation.errors import InvalidRequest
from federation.vertical.align import TEST, TRAIN, aligned, roles
from federation.vertical.features import prepare

KEY_COLUMN = "firm_key"  # a central pool's join column: the firm's prepared key


@dataclass(frozen=True)
class Inputs:
    features: np.ndarray
    roles: np.ndarray
    labels: np.ndarray | None


def party_inputs(
    frame: pd.DataFrame,
    by_row: Sequence[str | None],
    shared: Sequence[str],
    *,
    columns: Sequence[str],
    target: str | None,
    split_seed: str,
    test_fraction: float,
    validation_fraction: float,
    where: str,
) -> Inputs:
    """Features (with the intercept column if `target` is given: the label party), the split and the labels."""
    missing = [c for c in [*columns, *([target] if target else [])] if c not in frame.columns]
    if missing:
        raise InvalidRequest(f"{where}: the run names columns {missing}, which this party's harmonised records do not have")
    rows = aligned(frame, by_row, shared, [*columns, *([target] if target else [])])
    split = roles(shared, seed=split_seed, test_fraction=test_fraction, validation_fraction=validation_fraction)
    return inputs_from_rows(rows, split, columns=columns, target=target, where=where)


def inputs_from_rows(rows: pd.DataFrame, split: np.ndarray, *, columns: Sequence[str], target: str | None, where: str) -> Inputs:
    """A party's inputs from its records already aligned to the shared firms (at the party, or at a central pool)."""
    features = prepare(rows, list(columns), split == TRAIN) if columns else np.zeros((len(rows), 0))
    if target is None:
        return Inputs(features, split, None)
    labels = pd.to_numeric(rows[target].map(lambda v: float(v) if pd.notna(v) else np.nan), errors="coerce").to_numpy(
        dtype=np.float64
    )
    if not np.isfinite(labels[split == TRAIN]).any():
        raise InvalidRequest(f"{where}: field {target!r} has no label for any shared training firm, so nothing can be learned")
    return Inputs(np.hstack([features, np.ones((len(rows), 1))]), split, labels)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """The exact area under the ROC curve (ties count a half)."""
    ranks = pd.Series(scores).rank().to_numpy()
    positives = labels > 0.5
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / max(n_pos * n_neg, 1))


def at_k(scores: np.ndarray, labels: np.ndarray, k: int) -> tuple[float, float]:
    """Precision and recall of inspecting the k highest-scored firms."""
    top = np.argsort(-scores, kind="stable")[:k]
    hits = float(labels[top].sum())
    return hits / max(k, 1), hits / max(float(labels.sum()), 1.0)


def inspection_measures(
    scores: np.ndarray, labels: np.ndarray, split: np.ndarray, *, inspect_share: float = 0.05
) -> dict[str, float]:
    """AUC and precision / recall at k = `inspect_share` of the labelled test firms (the label party's own measure)."""
    test = (split == TEST) & np.isfinite(labels)
    k = max(1, round(inspect_share * int(test.sum())))
    precision, recall = at_k(scores[test], labels[test], k)
    return {
        "auc": auc(scores[test], labels[test]),
        "precision_at_k": precision,
        "recall_at_k": recall,
        "k": k,
        "test_firms": int(test.sum()),
    }
