"""Evaluation as sums, so metrics over several nodes add up exactly.

A node never reveals a single prediction: it returns counts, a loss sum and
histograms of predicted scores per class on fixed bins, from which accuracy,
log loss and AUC over any union of nodes follow by addition.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

HISTOGRAM_BINS = 200


@dataclass(frozen=True)
class EvalSums:
    """Additive evaluation statistics of a binary classifier."""

    count: int
    loss_sum: float
    correct: int
    positives: int
    positive_histogram: tuple[int, ...]
    negative_histogram: tuple[int, ...]

    @classmethod
    def empty(cls) -> EvalSums:
        zeros = (0,) * HISTOGRAM_BINS
        return cls(0, 0.0, 0, 0, zeros, zeros)

    @classmethod
    def from_scores(cls, scores: np.ndarray, labels: np.ndarray, losses: np.ndarray) -> EvalSums:
        """Summarise per-record probabilities, 0/1 labels and losses."""
        bins = np.clip((scores * HISTOGRAM_BINS).astype(np.int64), 0, HISTOGRAM_BINS - 1)
        positive = labels > 0.5
        pos_hist = np.bincount(bins[positive], minlength=HISTOGRAM_BINS)
        neg_hist = np.bincount(bins[~positive], minlength=HISTOGRAM_BINS)
        return cls(
            count=int(labels.size),
            loss_sum=float(losses.sum()),
            correct=int(((scores >= 0.5) == positive).sum()),
            positives=int(positive.sum()),
            positive_histogram=tuple(int(v) for v in pos_hist),
            negative_histogram=tuple(int(v) for v in neg_hist),
        )

    def __add__(self, other: EvalSums) -> EvalSums:
        return EvalSums(
            self.count + other.count,
            self.loss_sum + other.loss_sum,
            self.correct + other.correct,
            self.positives + other.positives,
            tuple(a + b for a, b in zip(self.positive_histogram, other.positive_histogram, strict=True)),
            tuple(a + b for a, b in zip(self.negative_histogram, other.negative_histogram, strict=True)),
        )

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else float("nan")

    @property
    def loss(self) -> float:
        return self.loss_sum / self.count if self.count else float("nan")

    @property
    def auc(self) -> float:
        """Area under the ROC curve from the binned scores (ties count one half)."""
        pos = np.asarray(self.positive_histogram, dtype=np.float64)
        neg = np.asarray(self.negative_histogram, dtype=np.float64)
        n_pos, n_neg = pos.sum(), neg.sum()
        if n_pos == 0 or n_neg == 0:
            return float("nan")
        negatives_below = np.cumsum(neg) - neg
        wins = (pos * (negatives_below + 0.5 * neg)).sum()
        return float(wins / (n_pos * n_neg))

    def metric(self, name: str) -> float:
        """A metric by name: accuracy, auc or loss."""
        if name == "accuracy":
            return self.accuracy
        if name == "auc":
            return self.auc
        if name == "loss":
            return self.loss
        raise ValueError(f"unknown metric {name!r}; expected accuracy, auc or loss")


def total(sums: Iterable[EvalSums]) -> EvalSums:
    """The sum of several nodes' statistics."""
    result = EvalSums.empty()
    for s in sums:
        result = result + s
    return result


LOSS_BOUND = 50.0  # the largest mean log loss a bounded vector can carry (a model this bad is useless anyway)


def bounded_length() -> int:
    """Elements of `to_bounded`: count, loss sum, correct, positives and both histograms."""
    return 4 + 2 * HISTOGRAM_BINS


def to_bounded(sums: EvalSums, *, cap: float) -> np.ndarray:
    """One node's sums divided by public bounds (counts by the record cap), so each lies in [0, 1].

    Secure aggregation sums fixed-point values in [-1, 1]; a node with more
    test records than `cap` refuses rather than be clipped.
    """
    if sums.count > cap:
        raise ValueError(f"{sums.count} test records exceed the round's cap of {cap:g}")
    loss = min(sums.loss_sum, LOSS_BOUND * sums.count)
    head = [sums.count / cap, loss / (LOSS_BOUND * cap), sums.correct / cap, sums.positives / cap]
    hist = np.concatenate([sums.positive_histogram, sums.negative_histogram]).astype(np.float64) / cap
    return np.concatenate([np.asarray(head), hist])


def from_bounded(total_: np.ndarray, *, cap: float) -> EvalSums:
    """The summed sums back from a summed bounded vector (counts rounded to integers)."""
    counts = np.rint(np.asarray(total_) * cap)
    bins = HISTOGRAM_BINS
    return EvalSums(
        count=int(counts[0]),
        loss_sum=float(total_[1] * LOSS_BOUND * cap),
        correct=int(counts[2]),
        positives=int(counts[3]),
        positive_histogram=tuple(int(v) for v in counts[4 : 4 + bins]),
        negative_histogram=tuple(int(v) for v in counts[4 + bins : 4 + 2 * bins]),
    )
