"""federation.models.training: parameters move as named arrays; local training improves the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from federation.errors import InvalidRequest
from federation.models import build_model
from federation.models.training import evaluate, get_arrays, set_arrays, train
from federation.task import ModelSpec


def separable(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x[:, 0] - 2 * x[:, 1] > 0).astype(np.float32)
    return x, y


def mean_loss(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return evaluate(model, x, y).loss


def test_get_and_set_arrays_round_trip() -> None:
    source = build_model(ModelSpec("mlp", {"hidden": [5]}), 3, seed=1)
    target = build_model(ModelSpec("mlp", {"hidden": [5]}), 3, seed=2)
    arrays = get_arrays(source)
    assert all(a.dtype == np.float32 for _, a in arrays)
    set_arrays(target, arrays)
    for (name_a, a), (name_b, b) in zip(arrays, get_arrays(target), strict=True):
        assert name_a == name_b
        np.testing.assert_array_equal(a, b)


def test_get_arrays_returns_copies() -> None:
    model = build_model(ModelSpec("logreg"), 2, seed=0)
    arrays = get_arrays(model)
    arrays[0][1][...] = 99.0
    assert not (get_arrays(model)[0][1] == 99.0).any()


def test_a_shape_mismatch_is_refused() -> None:
    model = build_model(ModelSpec("logreg"), 3, seed=0)
    arrays = get_arrays(model)
    arrays[0] = (arrays[0][0], np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(InvalidRequest, match="shape"):
        set_arrays(model, arrays)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_are_refused_and_nothing_is_loaded(bad: float) -> None:
    model = build_model(ModelSpec("logreg"), 3, seed=0)
    before = get_arrays(model)
    arrays = [(name, np.zeros_like(a)) for name, a in before]
    arrays[1][1][0] = bad
    with pytest.raises(InvalidRequest, match="NaN or infinite"):
        set_arrays(model, arrays)
    for (_, a), (_, b) in zip(before, get_arrays(model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_names_must_match_the_model() -> None:
    model = build_model(ModelSpec("logreg"), 3, seed=0)
    arrays = get_arrays(model)
    with pytest.raises(InvalidRequest, match="do not match"):
        set_arrays(model, arrays[:1])
    with pytest.raises(InvalidRequest, match="do not match"):
        set_arrays(model, list(reversed(arrays)))
    with pytest.raises(InvalidRequest, match="do not match"):
        set_arrays(model, [("evil", arrays[0][1]), arrays[1]])


def test_training_lowers_the_loss_on_a_separable_problem() -> None:
    x, y = separable()
    model = build_model(ModelSpec("logreg"), 3, seed=0)
    before = mean_loss(model, x, y)
    train(model, x, y, epochs=20, batch_size=16, learning_rate=0.05, seed=0)
    after = evaluate(model, x, y)
    assert after.loss < before / 2
    assert after.accuracy > 0.95


def test_training_is_deterministic_for_a_seed() -> None:
    x, y = separable()

    def trained(seed: int) -> list[np.ndarray]:
        model = build_model(ModelSpec("mlp", {"hidden": [4]}), 3, seed=0)
        train(model, x, y, epochs=2, batch_size=32, learning_rate=0.01, seed=seed)
        return [a for _, a in get_arrays(model)]

    assert all((a == b).all() for a, b in zip(trained(3), trained(3), strict=True))
    assert any((a != b).any() for a, b in zip(trained(3), trained(4), strict=True))


def test_the_proximal_term_keeps_weights_near_the_start() -> None:
    x, y = separable()

    def distance(mu: float) -> float:
        model = build_model(ModelSpec("logreg"), 3, seed=0)
        start = get_arrays(model)
        train(model, x, y, epochs=10, batch_size=16, learning_rate=0.05, seed=0, proximal_mu=mu)
        return float(sum(((a - b) ** 2).sum() for (_, a), (_, b) in zip(start, get_arrays(model), strict=True)))

    free, held = distance(0.0), distance(100.0)
    assert held < free / 10


def test_training_without_records_is_refused() -> None:
    model = build_model(ModelSpec("logreg"), 3, seed=0)
    with pytest.raises(InvalidRequest, match="no training records"):
        train(
            model,
            np.zeros((0, 3), dtype=np.float32),
            np.zeros(0, dtype=np.float32),
            epochs=1,
            batch_size=4,
            learning_rate=0.1,
            seed=0,
        )


def test_evaluate_counts_every_record() -> None:
    x, y = separable(50)
    sums = evaluate(build_model(ModelSpec("logreg"), 3, seed=0), x, y)
    assert sums.count == 50
    assert sums.positives == int(y.sum())
    assert sum(sums.positive_histogram) + sum(sums.negative_histogram) == 50
