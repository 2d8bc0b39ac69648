"""Vertical logistic regression on shares: the arithmetic of one run, every party played in one process.

This is the reference the networked run must reproduce step for step, and
the check that the shared arithmetic trains the model a plaintext run would:
the same bounded-score rule, the same full-batch gradient descent, the same
split. Party j keeps w_j in clear; per step

1. j computes u_j = X_j w_j (the label party adds the intercept), scales
   w_j down if max |u_j| exceeds its public budget B_j (sum of budgets
   < 16), and inputs t_j = u_j / 16 as shares;
2. the compute parties evaluate p = sigmoid(16 sum_j t_j) on shares
   (`sigmoid.shared`) and r = (p - y) on the training rows (the label
   party inputs y as shares);
3. each j obtains its gradient X_j^T r (`matvec`), and only that, and
   steps w_j <- w_j - lr (X_j^T r / n_train + l2 w_j).

Nobody sees another party's features or partial scores, the labels, or any
per-firm residual; party j sees its own gradient (which its weights reveal
anyway).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from federation.vertical import matvec
from federation.vertical.align import TRAIN, VALIDATION
from federation.vertical.ring import FRACTION, decode, encode
from federation.vertical.sigmoid import BOUND, Helper, Pair, plain, plain_log_loss, shared, shared_log_loss

MIN_IMPROVEMENT = 1e-4  # of the mean validation log-loss, below the fixed-point noise of about 1e-5 it would chase


@dataclass
class Party:
    """One party's columns for the shared firms (standardised on the party), and its weights."""

    name: str
    features: np.ndarray  # n x d, float
    budget: float  # max |X w| this party lets its partial score reach
    weights: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.weights = np.zeros(self.features.shape[1])

    def partial_score(self) -> np.ndarray:
        """X w, with w scaled down first if the score would exceed the budget (the same rule in every run)."""
        score = self.features @ self.weights
        peak = float(np.max(np.abs(score))) if score.size else 0.0
        if peak > self.budget:
            self.weights *= self.budget / peak
            score = self.features @ self.weights
        return np.asarray(score)


def budgets(widths: Mapping[str, int], total: float = BOUND - 0.5) -> dict[str, float]:
    """Each party's score budget, in proportion to its number of columns (public, agreed in the terms)."""
    columns = sum(widths.values())
    return {name: total * width / columns for name, width in widths.items()}


def _shares(value: np.ndarray, helper: Helper) -> Pair:
    first = helper.uniform(value.shape)  # in a run: a stream party 0 and the input's owner expand from their key
    return first, encode(value) - first


@dataclass
class History:
    """What early stopping saw: the validation log-loss per evaluation (the label party's output), and the step kept."""

    losses: list[tuple[int, float]] = field(default_factory=list)
    best_step: int = 0
    steps: int = 0


def shared_step(
    parties: list[Party], labels: np.ndarray, train: np.ndarray, helper: Helper, validation: np.ndarray | None = None
) -> tuple[dict[str, np.ndarray], float | None]:
    """Every party's gradient X_j^T r / n_train of one full-batch step, computed on shares, and the mean
    validation log-loss if `validation` rows are given (the one scalar opened, to the label party)."""
    t0 = np.zeros(len(labels), dtype=np.uint64)
    t1 = np.zeros(len(labels), dtype=np.uint64)
    for party in parties:
        first, second = _shares(party.partial_score() / BOUND, helper)
        t0, t1 = t0 + first, t1 + second
    y0, y1 = _shares(labels.astype(np.float64), helper)
    loss = None
    if validation is None:
        p0, p1 = shared((t0, t1), helper)
    else:
        (p0, p1), summed = shared_log_loss((t0, t1), (y0, y1), validation, helper)
        loss = float(decode(np.array([summed[0] + summed[1]]), fraction=2 * FRACTION)[0]) / max(int(validation.sum()), 1)
    mask = train.astype(np.uint64)  # public: every party derives the same roles
    r0, r1 = (p0 - y0) * mask, (p1 - y1) * mask
    gradients = {}
    for party in parties:
        gradients[party.name] = _gradient(party.features, (r0, r1), helper) / max(int(train.sum()), 1)
    return gradients, loss


def _gradient(features: np.ndarray, r: Pair, helper: Helper) -> np.ndarray:
    n, d = features.shape
    u = helper.uniform
    a, a0 = u((n, d)), u((n, d))  # j's pad, shared with the helper; party 0's share of it
    padded = encode(features) - a
    b = u((n,))
    first = matvec.StepShare(u((n,)), u((d,)))
    step0, step1 = matvec.helper_step(a, b, first)
    opened = matvec.masked(r[0], step0) + matvec.masked(r[1], step1)
    total = matvec.finish(padded, a0, opened, step0, party=0) + matvec.finish(padded, a - a0, opened, step1, party=1)
    return decode(total, fraction=2 * FRACTION)


def plain_step(
    parties: list[Party], labels: np.ndarray, train: np.ndarray, validation: np.ndarray | None = None
) -> tuple[dict[str, np.ndarray], float | None]:
    """The same step in float: the series sigmoid and loss, the same budgets. What a shared step must match."""
    t = sum((party.partial_score() / BOUND for party in parties), np.zeros(len(labels)))
    r = (plain(t) - labels) * train
    loss = None if validation is None else plain_log_loss(t, labels, validation) / max(int(validation.sum()), 1)
    return {party.name: party.features.T @ r / max(int(train.sum()), 1) for party in parties}, loss


def train(
    parties: list[Party],
    labels: np.ndarray,
    roles: np.ndarray,
    helper: Helper | None,
    *,
    max_steps: int,
    learning_rate: float,
    l2: float = 0.0,
    every: int = 5,
    patience: int = 4,
) -> History:
    """Gradient descent on shares (a helper given) or in float (None), stopped early on the validation log-loss.

    Every `every` steps the label party learns the mean validation loss; after
    `patience` evaluations without improvement it says stop, and every party
    goes back to its own weights of the best evaluation.
    """
    history = History()
    train_rows, validation_rows = roles == TRAIN, roles == VALIDATION
    best, kept, waited = np.inf, [p.weights.copy() for p in parties], 0
    for step in range(max_steps):
        check = validation_rows if step % every == 0 and validation_rows.any() else None
        if helper is not None:
            grads, loss = shared_step(parties, labels, train_rows, helper, check)
        else:
            grads, loss = plain_step(parties, labels, train_rows, check)
        history.steps = step + 1
        if loss is not None:
            history.losses.append((step, loss))
            if loss < best - MIN_IMPROVEMENT:
                best, kept, waited, history.best_step = loss, [p.weights.copy() for p in parties], 0, step
            else:
                waited += 1
                if waited >= patience:
                    break
        for party in parties:
            party.weights -= learning_rate * (grads[party.name] + l2 * party.weights)
    for party, weights in zip(parties, kept, strict=True):
        party.weights = weights
    return history
