"""The same model trained in float on columns held in one place: the central pool, and the label party alone.

Both baselines of a vertical study use exactly the trainer the parties run
on shares (`logistic.train` with no helper): the same series sigmoid and
log-loss, the same score budgets, the same early stopping on the same
validation rows. So a difference between them and the vertical run is the
cost of computing on shares (fixed-point rounding), and a difference
between the pool and the label party alone is what the other columns buy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from federation.errors import InvalidRequest
from federation.vertical.align import TEST
from federation.vertical.logistic import History, Party, budgets, train
from federation.vertical.rows import Inputs


@dataclass(frozen=True)
class Settings:
    """The training settings of the terms, which every arrangement shares."""

    learning_rate: float
    l2: float
    max_steps: int
    every: int
    patience: int


@dataclass(frozen=True)
class Fitted:
    weights: dict[str, np.ndarray]
    scores: np.ndarray  # the joint score of every shared firm
    history: History


def fit_float(inputs: Mapping[str, Inputs], label: str, settings: Settings) -> Fitted:
    """Logistic regression on every party's prepared columns at once; `label`'s inputs carry the labels."""
    labels = inputs[label].labels
    if labels is None:
        raise InvalidRequest(f"{label!r} holds no labels, so it cannot be the label party")
    split = inputs[label].roles
    bound = budgets({name: inputs[name].features.shape[1] for name in inputs})
    parties = [Party(name, inputs[name].features, bound[name]) for name in sorted(inputs)]
    known = np.isfinite(labels)
    history = train(
        parties,
        np.nan_to_num(labels),
        np.where(known, split, TEST + 1),  # a firm without a label trains, validates and tests nothing
        None,
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        l2=settings.l2,
        every=settings.every,
        patience=settings.patience,
    )
    scores = sum((p.partial_score() for p in parties), np.zeros(len(labels)))
    return Fitted({p.name: p.weights for p in parties}, scores, history)
