"""Evaluation as sums, so metrics over several nodes add up exactly.

A node never reveals a single prediction. For a binary classifier it returns
counts, a loss sum and histograms of predicted scores per class on fixed
bins, from which accuracy, log loss and AUC over any union of nodes follow by
addition. For a regression it returns the count, the sums of squared and
absolute errors and the sum and sum of squares of the target, from which
RMSE, MAE and R² over any union of nodes are exact (R² against the union's
own mean).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

HISTOGRAM_BINS = 200


BINARY_METRICS = ("auc", "accuracy", "loss")
REGRESSION_METRICS = ("r2", "rmse", "mae")
LOWER_IS_BETTER = frozenset({"loss", "rmse", "mae"})


@dataclass(frozen=True)
class EvalSums:
    """Additive evaluation statistics of a binary classifier or a regression (`loss_sum` is then the SSE)."""

    count: int
    loss_sum: float
    correct: int
    positives: int
    positive_histogram: tuple[int, ...]
    negative_histogram: tuple[int, ...]
    abs_error_sum: float = 0.0
    target_sum: float = 0.0
    target_squares: float = 0.0

    @classmethod
    def from_errors(cls, predictions: np.ndarray, targets: np.ndarray) -> EvalSums:
        """Summarise a regression's predictions against its targets."""
        errors = np.asarray(predictions, dtype=np.float64) - np.asarray(targets, dtype=np.float64)
        y = np.asarray(targets, dtype=np.float64)
        zeros = (0,) * HISTOGRAM_BINS
        return cls(
            count=int(y.size),
            loss_sum=float((errors**2).sum()),
            correct=0,
            positives=0,
            positive_histogram=zeros,
            negative_histogram=zeros,
            abs_error_sum=float(np.abs(errors).sum()),
            target_sum=float(y.sum()),
            target_squares=float((y**2).sum()),
        )

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
            self.abs_error_sum + other.abs_error_sum,
            self.target_sum + other.target_sum,
            self.target_squares + other.target_squares,
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

    @property
    def rmse(self) -> float:
        return float(np.sqrt(self.loss_sum / self.count)) if self.count else float("nan")

    @property
    def mae(self) -> float:
        return self.abs_error_sum / self.count if self.count else float("nan")

    @property
    def r2(self) -> float:
        """1 - SSE / total sum of squares around these records' own mean (NaN if the target does not vary)."""
        if self.count < 2:
            return float("nan")
        total_squares = self.target_squares - self.target_sum**2 / self.count
        if total_squares <= 1e-12 * max(self.target_squares, 1.0):
            return float("nan")
        return 1.0 - self.loss_sum / total_squares

    def metric(self, name: str) -> float:
        """A metric by name: auc, accuracy, loss (binary) or r2, rmse, mae (regression)."""
        if name in (*BINARY_METRICS, *REGRESSION_METRICS):
            return float(getattr(self, name))
        raise ValueError(f"unknown metric {name!r}; expected one of {[*BINARY_METRICS, *REGRESSION_METRICS]}")


@dataclass(frozen=True)
class Scores:
    """One model's sums on a node's test rows, and on its validation rows when the task holds some out."""

    test: EvalSums
    validation: EvalSums | None = None


def total(sums: Iterable[EvalSums]) -> EvalSums:
    """The sum of several nodes' statistics."""
    result = EvalSums.empty()
    for s in sums:
        result = result + s
    return result


LOSS_BOUND = 50.0  # the largest mean log loss a bounded vector can carry (a model this bad is useless anyway)


def bounded_length(*, regression: bool = False) -> int:
    """Elements of `to_bounded`: count, loss sum, correct, positives and both histograms (binary),
    or count and the four regression sums."""
    return 5 if regression else 4 + 2 * HISTOGRAM_BINS


def to_bounded(sums: EvalSums, *, cap: float, target_bound: float | None = None) -> np.ndarray:
    """One node's sums divided by public bounds (counts by the record cap), so each lies in [-1, 1].

    Secure aggregation sums fixed-point values in [-1, 1]; a node with more
    test records than `cap` refuses rather than be clipped. A regression
    needs `target_bound`, a public bound on |target| (the schema's min and
    max), and clips errors to twice that bound.
    """
    if sums.count > cap:
        raise ValueError(f"{sums.count} test records exceed the round's cap of {cap:g}")
    if target_bound is not None:
        b = target_bound
        sse = min(sums.loss_sum, 4 * b * b * sums.count)
        absolute = min(sums.abs_error_sum, 2 * b * sums.count)
        return np.asarray(
            [
                sums.count / cap,
                sse / (4 * b * b * cap),
                absolute / (2 * b * cap),
                sums.target_sum / (b * cap),
                sums.target_squares / (b * b * cap),
            ]
        )
    loss = min(sums.loss_sum, LOSS_BOUND * sums.count)
    head = [sums.count / cap, loss / (LOSS_BOUND * cap), sums.correct / cap, sums.positives / cap]
    hist = np.concatenate([sums.positive_histogram, sums.negative_histogram]).astype(np.float64) / cap
    return np.concatenate([np.asarray(head), hist])


def from_bounded(total_: np.ndarray, *, cap: float, target_bound: float | None = None) -> EvalSums:
    """The summed sums back from a summed bounded vector (counts rounded to integers)."""
    values = np.asarray(total_, dtype=np.float64)
    counts = np.rint(values * cap)
    bins = HISTOGRAM_BINS
    if target_bound is not None:
        b = target_bound
        zeros = (0,) * bins
        return EvalSums(
            count=int(counts[0]),
            loss_sum=float(values[1] * 4 * b * b * cap),
            correct=0,
            positives=0,
            positive_histogram=zeros,
            negative_histogram=zeros,
            abs_error_sum=float(values[2] * 2 * b * cap),
            target_sum=float(values[3] * b * cap),
            target_squares=float(values[4] * b * b * cap),
        )
    return EvalSums(
        count=int(counts[0]),
        loss_sum=float(values[1] * LOSS_BOUND * cap),
        correct=int(counts[2]),
        positives=int(counts[3]),
        positive_histogram=tuple(int(v) for v in counts[4 : 4 + bins]),
        negative_histogram=tuple(int(v) for v in counts[4 + bins : 4 + 2 * bins]),
    )
