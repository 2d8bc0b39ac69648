"""What a choice is judged on: each candidate's validation figure and each row's influence on it.

The selection rule (`selection`) needs, per candidate, a figure where lower is
better and, per validation row, that row's influence on the figure, scaled
so that the squared influences of a difference of two figures sum to its
variance. With those, one rule serves every criterion: paired standard
errors, and a simultaneous multiplier from a Gaussian multiplier bootstrap
over the rows.

* `mean_loss`: the task's loss, averaged over rows (binary cross-entropy or
  squared error); the influence of row i is (l_i - mean) / sqrt(n (n - 1)), so
  the variance of a paired difference is the textbook sd^2 / n.
* `rank_loss`: 1 - AUC, with DeLong's structural components (DeLong, DeLong
  and Clarke-Pearson 1988, in the fast form of Sun and Xu 2014). A positive's
  component is the share of negatives it outranks, a negative's the share of
  positives that outrank it; each class's centred components scaled by
  sqrt(m (m - 1)) give DeLong's variance, paired across candidates. Use it when
  the task is judged on AUC: a locally fine-tuned model often wins on
  cross-entropy by recalibrating the base rate while ranking worse, and the
  report would then show the "better" candidate losing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from federation.errors import InvalidRequest
from federation.task import CRITERIA

__all__ = ["CRITERIA", "Judged", "figure_name", "mean_loss", "rank_loss"]


@dataclass(frozen=True)
class Judged:
    """Per candidate (columns), the figure (lower is better) and each row's influence on it."""

    figure: np.ndarray  # (candidates,)
    influence: np.ndarray  # (rows, candidates); each column sums to 0

    def __post_init__(self) -> None:
        if self.influence.ndim != 2 or self.influence.shape[1] != self.figure.shape[0]:
            raise InvalidRequest(f"influence of shape {self.influence.shape} does not fit {self.figure.shape[0]} figures")


def mean_loss(losses: np.ndarray) -> Judged:
    """Mean per-row loss of each column of `losses` (rows x candidates)."""
    losses = np.asarray(losses, dtype=np.float64)
    n = losses.shape[0]
    figure = losses.mean(axis=0)
    scale = np.sqrt(n * (n - 1.0)) if n > 1 else np.inf
    return Judged(figure, (losses - figure) / scale)


def rank_loss(scores: np.ndarray, y: np.ndarray) -> Judged:
    """1 - AUC of each column of `scores` (rows x candidates) against binary labels `y`, with DeLong influence."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(y) > 0.5
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        raise InvalidRequest("an AUC needs validation rows of both classes")
    everything = rankdata(scores, axis=0)  # midranks, so ties count one half
    within_positive = rankdata(scores[positive], axis=0)
    within_negative = rankdata(scores[~positive], axis=0)
    outranked_negatives = (everything[positive] - within_positive) / n  # per positive: share of negatives below it
    outranking_positives = 1.0 - (everything[~positive] - within_negative) / m  # per negative: share of positives above
    auc = outranked_negatives.mean(axis=0)
    influence = np.zeros_like(scores)
    # minus: the figure is 1 - AUC, so a row that raises the AUC lowers the figure
    influence[positive] = -(outranked_negatives - auc) / (np.sqrt(m * (m - 1.0)) if m > 1 else np.inf)
    influence[~positive] = -(outranking_positives - auc) / (np.sqrt(n * (n - 1.0)) if n > 1 else np.inf)
    return Judged(1.0 - auc, influence)


def figure_name(criterion: str) -> str:
    """How a criterion's figure reads in a sentence."""
    return "validation AUC" if criterion == "auc" else "mean validation loss"
