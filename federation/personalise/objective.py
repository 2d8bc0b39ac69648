"""The two callables personalisation needs from a learning objective, and the binary default.

Personalisation never calls an optimiser or a loss directly: it fits through
`Fit`, predicts through `Predict` and scores through `RowLosses`, so a
regression objective (squared error) or a training loop with early stopping
plugs in without touching the candidates or the selection rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from federation.errors import InvalidRequest
from federation.models.training import train


class Fit(Protocol):
    """Train `model` in place on (x, y).

    `pull` is the Ditto/FedProx coefficient lambda of lambda/2 * ||w - w_start||^2,
    where w_start are the weights the model has when `fit` is called (0 = no pull).
    Parameters with `requires_grad = False` must stay unchanged (FedPer freezes the body).
    """

    def __call__(self, model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int, seed: int, pull: float) -> None: ...


RowLosses = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Per-row losses of a model's outputs (logits or predictions) against targets; never leaves the node."""


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The model's raw output per row (a logit, or a standardised prediction), as float64."""
    model.eval()
    outputs: np.ndarray = model(torch.from_numpy(np.asarray(x, dtype=np.float32))).squeeze(-1).numpy().astype(np.float64)
    return outputs


@dataclass(frozen=True)
class Objective:
    """How to fit and score one kind of target.

    `binary` asks for splits stratified by class and for a minimum of rows of
    each class before a validation split may decide anything.
    """

    fit: Fit
    row_losses: RowLosses
    binary: bool

    def losses(self, model: nn.Module, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-row losses of `model` on (x, y)."""
        return self.row_losses(predict(model, x), y)


def task_objective(*, objective: str, batch_size: int, learning_rate: float, weight_decay: float = 0.0) -> Objective:
    """A task's objective (binary cross-entropy or squared error) with the project's training loop and weight decay."""
    if objective not in ("binary", "regression"):
        raise InvalidRequest(f"unknown objective {objective!r}; expected binary or regression")
    if not 1 <= batch_size <= 1_000_000:
        raise InvalidRequest(f"batch_size must be in 1..1000000, got {batch_size}")
    if not (np.isfinite(learning_rate) and 0 < learning_rate <= 10):
        raise InvalidRequest(f"learning_rate must be in (0, 10], got {learning_rate}")

    def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int, seed: int, pull: float) -> None:
        # dropout draws from torch's global generator: seed a forked copy so a candidate is reproducible
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            train(
                model,
                x,
                y,
                epochs=epochs,
                batch_size=batch_size,
                learning_rate=learning_rate,
                seed=seed,
                proximal_mu=pull,
                objective=objective,
                weight_decay=weight_decay,
            )

    binary = objective == "binary"
    return Objective(fit=fit, row_losses=bce_row_losses if binary else squared_row_losses, binary=binary)


def binary_objective(*, batch_size: int, learning_rate: float, weight_decay: float = 0.0) -> Objective:
    """Binary cross-entropy with the project's Adam loop (`models.training.train`)."""
    return task_objective(objective="binary", batch_size=batch_size, learning_rate=learning_rate, weight_decay=weight_decay)


def squared_row_losses(predictions: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Squared error of each row (in the standardised unit the model learns)."""
    errors: np.ndarray = (np.asarray(predictions, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2
    return errors


def bce_row_losses(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Binary cross-entropy of each row, from the model's logit (computed stably)."""
    z = np.asarray(logits, dtype=np.float64)
    target = np.asarray(y, dtype=np.float64)
    losses: np.ndarray = np.logaddexp(0.0, z) - target * z
    return losses
