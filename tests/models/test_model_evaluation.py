"""federation.models.evaluation.EvalSums: additive statistics from which the usual metrics follow."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from federation.models.evaluation import HISTOGRAM_BINS, EvalSums, bounded_length, from_bounded, to_bounded, total


def rank_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann–Whitney AUC: P(score of a positive > score of a negative), ties counting one half."""
    pos, neg = scores[labels > 0.5], scores[labels <= 0.5]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def bce(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    p = np.clip(scores, 1e-7, 1 - 1e-7)
    return -(labels * np.log(p) + (1 - labels) * np.log(1 - p))


def sums_of(scores: np.ndarray, labels: np.ndarray) -> EvalSums:
    return EvalSums.from_scores(scores, labels, bce(scores, labels))


def scored_labels(min_size: int = 2) -> st.SearchStrategy[tuple[np.ndarray, np.ndarray]]:
    return st.integers(min_size, 120).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.float64, n, elements=st.floats(0.0, 1.0)),
            hnp.arrays(np.float64, n, elements=st.sampled_from([0.0, 1.0])),
        )
    )


@settings(deadline=None)
@given(scored_labels())
def test_histogram_auc_is_within_the_same_bin_ties_of_the_rank_auc(data: tuple[np.ndarray, np.ndarray]) -> None:
    scores, labels = data
    if labels.min() == labels.max():
        assert math.isnan(sums_of(scores, labels).auc)
        return
    bins = np.clip((scores * HISTOGRAM_BINS).astype(int), 0, HISTOGRAM_BINS - 1)
    pos_bins, neg_bins = bins[labels > 0.5], bins[labels <= 0.5]
    same_bin = (pos_bins[:, None] == neg_bins[None, :]).mean()
    assert abs(sums_of(scores, labels).auc - rank_auc(scores, labels)) <= 0.5 * same_bin + 1e-12


def test_histogram_auc_matches_the_rank_auc_on_spread_scores() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(2000) < 0.4).astype(np.float64)
    scores = 1 / (1 + np.exp(-(rng.normal(size=2000) + 1.5 * labels)))
    assert sums_of(scores, labels).auc == pytest.approx(rank_auc(scores, labels), abs=1 / HISTOGRAM_BINS)


def test_a_perfect_classifier_has_auc_one_and_an_inverted_one_zero() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1], dtype=np.float64)
    scores = np.array([0.05, 0.2, 0.4, 0.6, 0.8, 0.95])
    assert sums_of(scores, labels).auc == pytest.approx(1.0)
    assert sums_of(1 - scores, labels).auc == pytest.approx(0.0)
    assert sums_of(scores, labels).accuracy == 1.0
    assert sums_of(1 - scores, labels).accuracy == 0.0


def test_constant_scores_give_auc_one_half() -> None:
    labels = np.array([0, 1, 0, 1, 1], dtype=np.float64)
    assert sums_of(np.full(5, 0.3), labels).auc == pytest.approx(0.5)


@settings(deadline=None)
@given(scored_labels(), st.data())
def test_sums_of_parts_equal_the_whole(data: tuple[np.ndarray, np.ndarray], draw: st.DataObject) -> None:
    scores, labels = data
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(scores)), max_size=4)))
    edges = [0, *cuts, len(scores)]
    parts = [sums_of(scores[a:b], labels[a:b]) for a, b in itertools.pairwise(edges)]
    whole = sums_of(scores, labels)
    combined = total(parts)
    assert combined.count == whole.count
    assert combined.correct == whole.correct
    assert combined.positives == whole.positives
    assert combined.positive_histogram == whole.positive_histogram
    assert combined.negative_histogram == whole.negative_histogram
    assert combined.loss_sum == pytest.approx(whole.loss_sum)
    if not math.isnan(whole.auc):
        assert combined.auc == pytest.approx(whole.auc)


def test_empty_is_the_identity_of_addition() -> None:
    sums = sums_of(np.array([0.1, 0.9]), np.array([0.0, 1.0]))
    assert sums + EvalSums.empty() == sums
    assert EvalSums.empty() + sums == sums
    assert total([]) == EvalSums.empty()


def test_adding_histograms_of_a_different_length_is_refused() -> None:
    short = EvalSums(1, 0.1, 1, 0, (0,) * 10, (1,) + (0,) * 9)
    with pytest.raises(ValueError):
        _ = short + EvalSums.empty()


def test_accuracy_and_loss_definitions() -> None:
    labels = np.array([1, 0, 1, 0], dtype=np.float64)
    scores = np.array([0.9, 0.6, 0.5, 0.1])
    losses = np.array([0.1, 0.9, 0.7, 0.1])
    sums = EvalSums.from_scores(scores, labels, losses)
    assert sums.count == 4
    assert sums.positives == 2
    assert sums.correct == 3  # a score of exactly 0.5 predicts the positive class
    assert sums.accuracy == pytest.approx(0.75)
    assert sums.loss == pytest.approx(0.45)
    assert sums.loss_sum == pytest.approx(1.8)
    assert sums.metric("accuracy") == sums.accuracy
    assert sums.metric("loss") == sums.loss
    assert sums.metric("auc") == sums.auc


def test_scores_at_the_edges_land_in_the_end_bins() -> None:
    sums = sums_of(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    assert sums.negative_histogram[0] == 1
    assert sums.positive_histogram[HISTOGRAM_BINS - 1] == 1
    assert len(sums.positive_histogram) == len(sums.negative_histogram) == HISTOGRAM_BINS


def test_metrics_of_nothing_are_nan() -> None:
    empty = EvalSums.empty()
    assert math.isnan(empty.accuracy)
    assert math.isnan(empty.loss)
    assert math.isnan(empty.auc)


def test_an_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        EvalSums.empty().metric("f1")


# -- regression sums ------------------------------------------------------------------


def test_regression_sums_over_nodes_give_exactly_the_pooled_r2_rmse_and_mae() -> None:
    rng = np.random.default_rng(5)
    parts = []
    for size, shift in ((40, 0.0), (7, 3.0), (130, -1.5)):  # nodes with different means: R² is against the union's mean
        y = rng.normal(shift, 2.0, size)
        parts.append((y + rng.normal(0, 0.7, size), y))
    pooled_pred = np.concatenate([p for p, _ in parts])
    pooled_y = np.concatenate([y for _, y in parts])
    summed = total(EvalSums.from_errors(p, y) for p, y in parts)
    residual = ((pooled_pred - pooled_y) ** 2).sum()
    assert summed.r2 == pytest.approx(1 - residual / ((pooled_y - pooled_y.mean()) ** 2).sum(), rel=1e-9)
    assert summed.rmse == pytest.approx(np.sqrt(np.mean((pooled_pred - pooled_y) ** 2)), rel=1e-9)
    assert summed.mae == pytest.approx(np.mean(np.abs(pooled_pred - pooled_y)), rel=1e-9)
    assert summed.metric("r2") == summed.r2


def test_a_constant_target_has_no_r2() -> None:
    sums = EvalSums.from_errors(np.array([1.0, 2.0]), np.array([3.0, 3.0]))
    assert np.isnan(sums.r2) and sums.rmse == pytest.approx(np.sqrt(2.5))


def test_regression_sums_survive_the_bounded_encoding_of_secure_aggregation() -> None:
    rng = np.random.default_rng(2)
    y = rng.uniform(-50, 80, 300)
    sums = EvalSums.from_errors(y + rng.normal(0, 5, 300), y)
    vector = to_bounded(sums, cap=512.0, target_bound=100.0)
    assert vector.shape == (bounded_length(regression=True),) and np.all(np.abs(vector) <= 1)
    back = from_bounded(vector, cap=512.0, target_bound=100.0)
    assert back.count == 300 and back.r2 == pytest.approx(sums.r2, rel=1e-9) and back.mae == pytest.approx(sums.mae)
