"""Personalised federation on one node: candidates from the global model and local rows, chosen conservatively.

Pure: no network, no files. A node calls `personalise` after federated
training with the global model's arrays and its own training rows; it gets
back a model to evaluate on its test split and a `Choice`, the only thing
(besides test metrics) that may leave the node.

```
personalise(global_arrays, spec, x_train, y_train, *, methods, objective, init_seed, seed)
  parse_methods    methods.py    the request -> candidates (local always first)
  held_out / carve split.py      the task's validation rows, or rows carved from the training rows
  train_candidates methods.py    each candidate on the rows it may see
  too_few_for_local split.py     whether the default is local-only or (few events) the global model
  choose           selection.py  keep the default unless another wins by more than its widened SE
  refit                          carved rows only: the chosen recipe on all training rows
```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

import numpy as np
from torch import nn

from federation.errors import InvalidRequest
from federation.models.training import NamedArrays
from federation.personalise.criteria import CRITERIA, Judged, mean_loss, rank_loss
from federation.personalise.methods import METHOD_NAMES, METHODS, Candidate, Start, parse_methods, train_candidates
from federation.personalise.objective import (
    Fit,
    Objective,
    RowLosses,
    bce_row_losses,
    binary_objective,
    predict,
    task_objective,
)
from federation.personalise.selection import Choice, Comparison, ValidationSummary, choose, keep_default
from federation.personalise.split import Split, ValidationRules, carve, held_out, too_few_for_local
from federation.task import ModelSpec, ParamValue

__all__ = [
    "CRITERIA",
    "METHODS",
    "METHOD_NAMES",
    "Candidate",
    "Choice",
    "Comparison",
    "Fit",
    "Objective",
    "RowLosses",
    "Split",
    "ValidationRules",
    "ValidationSummary",
    "bce_row_losses",
    "binary_objective",
    "carve",
    "parse_methods",
    "personalise",
    "task_objective",
]


def _fold_seed(seed: int, fold: int) -> int:
    return (seed * 1_000_003 + (fold + 1) * 104_729) % 2**31


def _checked(x: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise InvalidRequest(f"{what} must be a 2-D matrix and a label vector of the same length, got {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InvalidRequest(f"{what} contain NaN or infinite values")
    return x, y


def personalise(
    global_arrays: NamedArrays,
    spec: ModelSpec,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    methods: Mapping[str, Mapping[str, ParamValue]],
    objective: Objective,
    init_seed: int,
    seed: int,
    rules: ValidationRules | None = None,
    criterion: str = "loss",
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[nn.Module, Choice]:
    """Build the requested candidates, choose one on validation rows, and return its model.

    `init_seed` is the task's model seed, so `local` starts from the weights
    federated training started from; `seed` drives the split, the shuffles and
    the bootstrap, so the same inputs give the same model and choice.
    `criterion` is what the choice is judged on: "loss" (the task's mean loss)
    or "auc" (binary tasks judged on ranking; see `criteria`).

    `validation` are the task's held-out rows, which federated training only
    chose its round on: every candidate trains on `x_train` and is judged on
    them, and the chosen candidate's model is returned as validated, trained
    on the same rows as every other topology's. Without them (a task that holds
    no rows out) validation rows are carved from `x_train`, where the global
    model has been trained on them too; the chosen recipe is then refit on all
    of `x_train`, because under cross-fitting no single validated model exists.
    """
    x, y = _checked(x_train, y_train, "training rows")
    if len(y) == 0:
        raise InvalidRequest("no training records")
    if criterion not in CRITERIA:
        raise InvalidRequest(f"unknown selection criterion {criterion!r}; expected one of {', '.join(CRITERIA)}")
    if criterion == "auc" and not objective.binary:
        raise InvalidRequest("the auc criterion needs a binary target; choose a regression on its loss")
    rules = rules or ValidationRules()
    candidates = parse_methods(methods, model=spec)
    local = candidates[0]
    start = Start(spec, x.shape[1], init_seed, global_arrays)
    start.global_model()  # refuses arrays that do not fit the model before anything trains
    few_local = too_few_for_local(y, binary=objective.binary, inputs=x.shape[1], rules=rules)
    offered_global = next((c for c in candidates if c.method == "global"), None)
    default = offered_global if few_local and offered_global is not None else local
    n_fit = len(y)
    if validation is not None and len(validation[1]) > 0:
        x_valid, y_valid = _checked(*validation, "validation rows")
        if x_valid.shape[1] != x.shape[1]:
            raise InvalidRequest(f"validation rows have {x_valid.shape[1]} columns, training rows {x.shape[1]}")
        split = held_out(y, y_valid, binary=objective.binary, rules=rules)
        x, y = np.concatenate([x, x_valid]), np.concatenate([y, y_valid])
    else:
        split = carve(y, binary=objective.binary, rules=rules, seed=seed)
    kept = split.scheme == "task"  # the validated models are the answer: no refit
    if not split.enough:
        choice = keep_default(default, criterion=criterion, split=split, training_rows=n_fit, few_local=few_local)
        return _refit(choice, start, x[:n_fit], y[:n_fit], local=local, objective=objective, seed=seed), choice
    n = len(y)
    out_of_fold = {c: np.full(n, np.nan) for c in candidates}
    fold_models: dict[Candidate, nn.Module] = {}
    for fold, rows in enumerate(split.folds):
        fit_rows = split.training_rows(fold, n)
        fold_seed = seed if kept else _fold_seed(seed, fold)
        stop = partial(_mean_loss, objective, x[rows], y[rows]) if kept else None
        fold_models = train_candidates(
            candidates, start, x[fit_rows], y[fit_rows], local=local, fit=objective.fit, seed=fold_seed, stop=stop
        )
        for candidate, model in fold_models.items():
            out_of_fold[candidate][rows] = predict(model, x[rows])
    validated = np.concatenate(split.folds)
    y_valid = y[validated]
    if criterion == "auc":
        values = {c: v[validated] for c, v in out_of_fold.items()}
        judge: Callable[[np.ndarray], Judged] = lambda scores: rank_loss(scores, y_valid)  # noqa: E731
    else:
        values = {c: objective.row_losses(v[validated], y_valid) for c, v in out_of_fold.items()}
        judge = mean_loss
    choice = choose(
        values,
        judge,
        criterion=criterion,
        default=default,
        split=split,
        training_rows=n_fit,
        few_local=few_local,
        resamples=rules.bootstrap,
        seed=seed,
    )
    if kept:
        return fold_models[choice.candidate], choice
    return _refit(choice, start, x, y, local=local, objective=objective, seed=seed), choice


def _mean_loss(objective: Objective, x: np.ndarray, y: np.ndarray, model: nn.Module) -> float:
    return float(objective.losses(model, x, y).mean())


def _refit(
    choice: Choice, start: Start, x: np.ndarray, y: np.ndarray, *, local: Candidate, objective: Objective, seed: int
) -> nn.Module:
    """The chosen recipe on all training rows (the global model needs no fitting)."""
    chosen = choice.candidate
    if chosen.method == "global":
        return start.global_model()
    return train_candidates([chosen], start, x, y, local=local, fit=objective.fit, seed=seed)[chosen]
