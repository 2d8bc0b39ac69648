"""The registry of personalisation methods a node may run, with their hyperparameters.

A coordinator names methods and hyperparameters (`{"ditto": {"lambdas": [0.1, 1.0]}}`);
it never ships code. A department can read this file and know every model a
node may build from the global model and its own rows. Each requested method
expands into candidates (one per grid value); `local` is always a candidate,
because it is the baseline that no party may end below.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from federation.errors import InvalidRequest
from federation.models import build_model
from federation.models.training import NamedArrays, flatten, get_arrays, set_arrays, unflatten
from federation.personalise.objective import Fit
from federation.task import ModelSpec, ParamValue

Stop = Callable[[nn.Module], float]  # a model's mean loss on rows held out of its training rows

Check = Callable[[ParamValue], str | None]
Scalar = int | float


def _epochs(value: ParamValue) -> str | None:
    # a whole float is an integer: numbers cross the wire as doubles
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer() and 1 <= value <= 1_000
    return None if ok else f"must be an integer in 1..1000, got {value!r}"


def _grid(low: float, high: float, *, open_low: bool, open_high: bool) -> Check:
    def check(value: ParamValue) -> str | None:
        numbers = value if isinstance(value, list) else None
        if not numbers or len(numbers) > 10 or len(set(numbers)) != len(numbers):
            return f"must be a list of 1..10 distinct numbers, got {value!r}"
        for v in numbers:
            if (
                isinstance(v, bool)
                or not np.isfinite(v)
                or v < low
                or v > high
                or (open_low and v == low)
                or (open_high and v == high)
            ):
                return f"values must lie in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}, got {v!r}"
        return None

    return check


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its default and its check; `grid` names the candidate key of a list."""

    default: ParamValue
    check: Check
    grid: str = ""


@dataclass(frozen=True)
class Method:
    """A way of building a personal model; `mlp_only` when it needs a body and a head."""

    name: str
    summary: str
    params: Mapping[str, Param]
    mlp_only: bool = False


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("local", "local-only: the task's initial weights trained on this node's rows", {"epochs": Param(20, _epochs)}),
        Method("global", "the global model as federated training left it", {}),
        Method("finetune", "the global model trained further on this node's rows", {"epochs": Param(5, _epochs)}),
        Method(
            "interpolate",
            "alpha * global + (1 - alpha) * local, weight by weight (alpha 0 is local, 1 is global)",
            {"alphas": Param([0.25, 0.5, 0.75], _grid(0.0, 1.0, open_low=True, open_high=True), grid="alpha")},
        ),
        Method(
            "ditto",
            "a personal model from the global one, trained with lambda/2 * ||w - w_global||^2 (Li et al. 2021)",
            {
                "lambdas": Param([0.01, 0.1, 1.0], _grid(0.0, 1e4, open_low=True, open_high=False), grid="lambda"),
                "epochs": Param(10, _epochs),
            },
        ),
        Method(
            "fedper",
            "the global model's body, its last linear layer (the head) retrained locally (Arivazhagan et al. 2019)",
            {"epochs": Param(10, _epochs)},
            mlp_only=True,
        ),
    )
}
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)
NEEDS_LOCAL = frozenset({"local", "interpolate"})


@dataclass(frozen=True)
class Candidate:
    """One model to validate: a method and scalar hyperparameters (a grid value expanded)."""

    method: str
    params: tuple[tuple[str, Scalar], ...] = ()

    @property
    def label(self) -> str:
        """A short name for summaries, such as `ditto(lambda=0.1, epochs=10)`."""
        inner = ", ".join(f"{k}={v:g}" for k, v in self.params)
        return f"{self.method}({inner})" if inner else self.method

    def param(self, key: str) -> Scalar:
        return dict(self.params)[key]


def _hint(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}?" if close else f"known: {', '.join(choices) or 'none'}"


def parse_methods(requested: Mapping[str, Mapping[str, ParamValue]], *, model: ModelSpec) -> tuple[Candidate, ...]:
    """Validate a request and expand it into candidates, `local` first, in registry order.

    Every problem is collected and raised once as `InvalidRequest`, with the
    closest known name for a misspelt method or hyperparameter.
    """
    problems: list[str] = []
    for name, params in requested.items():
        method = METHODS.get(name)
        if method is None:
            problems.append(f"unknown personalisation method {name!r}; {_hint(name, METHOD_NAMES)}")
            continue
        if method.mlp_only and model.name != "mlp":
            problems.append(f"{name!r} needs a shared body and a separate head: it works for 'mlp', not for {model.name!r}")
        for key, value in params.items():
            param = method.params.get(key)
            if param is None:
                problems.append(f"method {name!r} has no hyperparameter {key!r}; {_hint(key, list(method.params))}")
            elif (problem := param.check(value)) is not None:
                problems.append(f"{name}.{key} {problem}")
    if problems:
        raise InvalidRequest("invalid personalisation request: " + "; ".join(problems))
    candidates: list[Candidate] = []
    for name, method in METHODS.items():
        if name not in requested and name != "local":
            continue
        chosen = {key: requested.get(name, {}).get(key, param.default) for key, param in method.params.items()}
        grids = [(key, method.params[key].grid) for key in chosen if method.params[key].grid]
        fixed = tuple((k, v) for k, v in chosen.items() if not method.params[k].grid and isinstance(v, (int, float)))
        if not grids:
            candidates.append(Candidate(name, fixed))
            continue
        (key, label), *_ = grids  # one grid per method at most
        values = chosen[key]
        grid = values if isinstance(values, list) else [values]  # a list once checked; this narrows the type
        candidates.extend(Candidate(name, ((label, float(v)), *fixed)) for v in grid if not isinstance(v, str))
    return tuple(candidates)


def head_of(model: nn.Module) -> nn.Linear:
    """The last linear layer; refuses a model with no body in front of it."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if len(linears) < 2:
        raise InvalidRequest("fedper needs a model with a body and a head (at least two linear layers), such as 'mlp'")
    return linears[-1]


def _fit_head(model: nn.Module, x: np.ndarray, y: np.ndarray, fit: Fit, *, epochs: int, seed: int) -> None:
    head = set(map(id, head_of(model).parameters()))
    saved = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in saved:
            p.requires_grad_(id(p) in head)
        fit(model, x, y, epochs=epochs, seed=seed, pull=0.0)
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def interpolate(global_arrays: NamedArrays, local_arrays: NamedArrays, alpha: float) -> NamedArrays:
    """alpha * global + (1 - alpha) * local, parameter by parameter."""
    mixed = alpha * flatten(global_arrays) + (1.0 - alpha) * flatten(local_arrays)
    return unflatten(mixed, global_arrays)


@dataclass(frozen=True)
class Start:
    """Where candidates start from: the task's initial weights (by seed) and the global model."""

    spec: ModelSpec
    n_inputs: int
    init_seed: int
    global_arrays: NamedArrays

    def initial(self) -> nn.Module:
        return build_model(self.spec, self.n_inputs, seed=self.init_seed)

    def global_model(self) -> nn.Module:
        model = self.initial()
        set_arrays(model, self.global_arrays)
        return model


def _early_stopped(model: nn.Module, x: np.ndarray, y: np.ndarray, fit: Fit, *, epochs: int, seed: int, stop: Stop) -> None:
    """Train epoch by epoch and keep the weights of the epoch with the lowest `stop` loss (as local-only does)."""
    best, best_loss = copy.deepcopy(model.state_dict()), math.inf
    for epoch in range(epochs):
        fit(model, x, y, epochs=1, seed=(seed + 104_729 * epoch) % 2**31, pull=0.0)
        loss = stop(model)
        if loss < best_loss:
            best, best_loss = copy.deepcopy(model.state_dict()), loss
    model.load_state_dict(best)


def train_candidates(
    candidates: Sequence[Candidate],
    start: Start,
    x: np.ndarray,
    y: np.ndarray,
    *,
    local: Candidate,
    fit: Fit,
    seed: int,
    stop: Stop | None = None,
) -> dict[Candidate, nn.Module]:
    """Build every candidate on (x, y).

    The local model (recipe `local`) is trained once, and only when a candidate
    needs it, so interpolations share it and refitting `global` trains nothing.
    With `stop` (the mean loss on rows held out of x), the local model keeps
    its best epoch by that loss, as the local-only topology keeps its best
    round: the baseline a party must not fall below is local-only at its best.
    """
    base = start.global_model()
    local_model: nn.Module | None = None
    if any(c.method in NEEDS_LOCAL for c in candidates):
        local_model = start.initial()
        epochs = int(local.param("epochs"))
        if stop is None:
            fit(local_model, x, y, epochs=epochs, seed=seed, pull=0.0)
        else:
            _early_stopped(local_model, x, y, fit, epochs=epochs, seed=seed, stop=stop)
    models: dict[Candidate, nn.Module] = {}
    for index, candidate in enumerate(candidates):
        method, model = candidate.method, copy.deepcopy(base)
        step_seed = (seed + 7919 * (index + 1)) % 2**31
        if method == "local" and local_model is not None:
            model = local_model
        elif method == "interpolate" and local_model is not None:
            set_arrays(model, interpolate(start.global_arrays, get_arrays(local_model), float(candidate.param("alpha"))))
        elif method == "finetune":
            fit(model, x, y, epochs=int(candidate.param("epochs")), seed=step_seed, pull=0.0)
        elif method == "ditto":
            fit(model, x, y, epochs=int(candidate.param("epochs")), seed=step_seed, pull=float(candidate.param("lambda")))
        elif method == "fedper":
            _fit_head(model, x, y, fit, epochs=int(candidate.param("epochs")), seed=step_seed)
        elif method != "global":
            raise InvalidRequest(f"unknown personalisation method {method!r}; {_hint(method, METHOD_NAMES)}")
        models[candidate] = model
    return models
