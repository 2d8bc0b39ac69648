"""federation.models.registry: nodes build only registered models, deterministically, from checked parameters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from federation.errors import InvalidRequest
from federation.models import MODEL_NAMES, build_model
from federation.models.training import get_arrays
from federation.task import ModelSpec


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_registered_model_builds_with_default_parameters(name: str) -> None:
    model = build_model(ModelSpec(name), 4, seed=0)
    assert model(torch.zeros(5, 4)).shape == (5, 1)


def test_an_unknown_model_names_the_allowed_ones() -> None:
    with pytest.raises(InvalidRequest) as caught:
        build_model(ModelSpec("xgboost"), 4, seed=0)
    message = caught.value.public
    assert "'xgboost'" in message
    assert all(name in message for name in MODEL_NAMES)


def test_a_model_needs_an_input() -> None:
    with pytest.raises(InvalidRequest, match="at least one input"):
        build_model(ModelSpec("logreg"), 0, seed=0)


def test_logreg_maps_inputs_to_one_logit() -> None:
    model = build_model(ModelSpec("logreg"), 5, seed=0)
    assert model(torch.zeros(3, 5)).shape == (3, 1)
    assert sum(p.numel() for p in model.parameters()) == 6


def test_mlp_builds_the_hidden_layers_asked_for() -> None:
    model = build_model(ModelSpec("mlp", {"hidden": [8, 4], "dropout": 0.2}), 3, seed=0)
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(3, 8), (8, 4), (4, 1)]
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 2
    assert model(torch.zeros(2, 3)).shape == (2, 1)


def test_mlp_accepts_integral_floats_from_the_wire() -> None:
    model = build_model(ModelSpec("mlp", {"hidden": [16.0]}), 3, seed=0)
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [16, 1]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"hidden": 32}, "hidden"),
        ({"hidden": [0]}, "hidden"),
        ({"hidden": [5000]}, "hidden"),
        ({"hidden": [2.5]}, "hidden"),
        ({"hidden": ["32"]}, "hidden"),
        ({"hidden": [4] * 9}, "hidden"),
        ({"dropout": 0.95}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"dropout": "0.1"}, "dropout"),
        ({"dropout": True}, "dropout"),
    ],
)
def test_bad_hyperparameters_are_refused(params: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        build_model(ModelSpec("mlp", params), 3, seed=0)  # type: ignore[arg-type]
    assert repr(field) in caught.value.public


@pytest.mark.parametrize(("name", "params"), [("mlp", {"hiden": [8]}), ("logreg", {"hidden": [8]})])
def test_an_unknown_hyperparameter_is_refused(name: str, params: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        build_model(ModelSpec(name, params), 3, seed=0)  # type: ignore[arg-type]
    assert "has no parameter(s)" in caught.value.public
    assert repr(next(iter(params))) in caught.value.public


@pytest.mark.parametrize(("name", "params"), [("logreg", {}), ("mlp", {"hidden": [8, 8]})])
def test_initial_weights_are_deterministic_for_a_seed(name: str, params: dict[str, object]) -> None:
    def weights(seed: int) -> list[tuple[str, object]]:
        return get_arrays(build_model(ModelSpec(name, params), 4, seed=seed))  # type: ignore[arg-type]

    first, again, other = weights(7), weights(7), weights(8)
    assert [n for n, _ in first] == [n for n, _ in again]
    assert all((a == b).all() for (_, a), (_, b) in zip(first, again, strict=True))  # type: ignore[union-attr]
    assert any((a != b).any() for (_, a), (_, b) in zip(first, other, strict=True))  # type: ignore[union-attr]


def test_building_a_model_leaves_the_global_random_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model(ModelSpec("mlp"), 4, seed=0)
    assert torch.equal(torch.rand(3), expected)
