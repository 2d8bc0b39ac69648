"""Personalisation of a regression: the squared-error objective plugs into the same candidates and rule."""

from __future__ import annotations

import numpy as np
import pytest

from federation.errors import InvalidRequest
from federation.models.registry import build_model
from federation.models.training import get_arrays
from federation.personalise import personalise, task_objective
from federation.task import ModelSpec

LINEAR = ModelSpec("linear")


def test_a_regression_node_gets_a_choice_and_a_model_that_predicts_its_target() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.1, 300)).astype(np.float32)
    objective = task_objective(objective="regression", batch_size=32, learning_rate=0.05)
    start = get_arrays(build_model(LINEAR, 3, seed=1))
    model, choice = personalise(start, LINEAR, x, y, methods={"finetune": {}}, objective=objective, init_seed=1, seed=2)
    losses = objective.losses(model, x, y)
    assert losses.shape == (300,) and float(losses.mean()) < 0.1 * float(np.var(y))
    assert choice.method in ("local", "finetune", "global") and choice.reason


def test_an_unknown_objective_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="unknown objective"):
        task_objective(objective="poisson", batch_size=32, learning_rate=0.05)
