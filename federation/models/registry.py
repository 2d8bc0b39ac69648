"""The registry of model specs a node may build, by name, with hyperparameters.

A coordinator names a model and its hyperparameters; it never ships code.
A department can read this file and know everything that may run on its data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from federation.errors import InvalidRequest
from federation.task import ModelSpec, ParamValue

if TYPE_CHECKING:  # torch is imported when a model is built, not when a node starts (200 MB, a second)
    from torch import nn

Builder = Callable[[int, Mapping[str, ParamValue]], "nn.Module"]


def _int_list(params: Mapping[str, ParamValue], key: str, default: list[int]) -> list[int]:
    value = params.get(key, default)
    if not isinstance(value, list) or not all(
        isinstance(v, (int, float)) and float(v).is_integer() and 1 <= v <= 4096 for v in value
    ):
        raise InvalidRequest(f"model parameter {key!r} must be a list of integers in 1..4096, got {value!r}")
    if len(value) > 8:
        raise InvalidRequest(f"model parameter {key!r} allows at most 8 layers")
    return [int(v) for v in value]


def _float(params: Mapping[str, ParamValue], key: str, default: float, low: float, high: float) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidRequest(f"model parameter {key!r} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _check_keys(name: str, params: Mapping[str, ParamValue], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidRequest(f"model {name!r} has no parameter(s) {unknown}; it takes {sorted(allowed)}")


def _logreg(n_inputs: int, params: Mapping[str, ParamValue]) -> nn.Module:
    """Logistic regression: one linear layer to a single logit."""
    from torch import nn

    _check_keys("logreg", params, set())
    return nn.Linear(n_inputs, 1)


def _linear(n_inputs: int, params: Mapping[str, ParamValue]) -> nn.Module:
    """Linear regression: one linear layer to a single output (logreg's counterpart for a numeric target)."""
    from torch import nn

    _check_keys("linear", params, set())
    return nn.Linear(n_inputs, 1)


def _mlp(n_inputs: int, params: Mapping[str, ParamValue]) -> nn.Module:
    """A multilayer perceptron with ReLU and optional dropout, ending in one output (a logit, or a value)."""
    from torch import nn

    _check_keys("mlp", params, {"hidden", "dropout"})
    hidden = _int_list(params, "hidden", [32])
    dropout = _float(params, "dropout", 0.0, 0.0, 0.9)
    layers: list[nn.Module] = []
    width = n_inputs
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


_SEEDING = threading.Lock()
REGISTRY: dict[str, Builder] = {"linear": _linear, "logreg": _logreg, "mlp": _mlp}
OBJECTIVE_MODELS: dict[str, tuple[str, ...]] = {"binary": ("logreg", "mlp"), "regression": ("linear", "mlp")}
MODEL_NAMES: tuple[str, ...] = tuple(sorted(REGISTRY))


def build_model(spec: ModelSpec, n_inputs: int, *, seed: int) -> nn.Module:
    """Build a registered model with deterministic initial weights."""
    builder = REGISTRY.get(spec.name)
    if builder is None:
        raise InvalidRequest(f"unknown model {spec.name!r}; this node runs only {list(MODEL_NAMES)}")
    if n_inputs < 1:
        raise InvalidRequest("a model needs at least one input column")
    import torch

    with _SEEDING, torch.random.fork_rng(devices=[]):  # torch's random state is the process's: nodes hosted together take turns
        torch.manual_seed(seed)
        return builder(n_inputs, spec.params)
