"""Carving validation rows out of a node's training rows (never its test rows).

A node with plenty of rows holds out one stratified fraction; a node with few
rows cross-fits (k folds, every row validated once by models that never saw
it), because a single small holdout would be too noisy to beat local-only
with and would also cost the local model a fifth of its scarce rows. The split
depends only on the labels and the seed, so a node can carve the same split
before federated training if it wants the validation rows kept out of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from federation.errors import InvalidRequest


@dataclass(frozen=True)
class ValidationRules:
    """When a node may choose, and how it validates; the defaults are documented choices.

    `min_rows` / `min_per_class`: below these the validation rows cannot tell
    candidates apart and the node keeps its default without comparing.
    `events_per_input`: a local model needs at least this many events (rows
    of the rarer class; rows, for a regression) per model input to be
    trusted: the events-per-variable rule of Peduzzi et al. (1996). Below it
    the global model, if offered, is the default instead of local-only.
    (Counting per parameter instead, as an MLP's appetite for data would
    suggest, made a district of 2,500 records with a stable local model
    default to a global model that served it slightly worse.)
    `bootstrap`: resamples for the selection threshold (see `selection`).
    """

    fraction: float = 0.2
    folds: int = 5
    holdout_min_rows: int = 100
    holdout_min_per_class: int = 20
    min_rows: int = 20
    min_per_class: int = 5
    events_per_input: int = 10
    bootstrap: int = 2000

    def __post_init__(self) -> None:
        problems = []
        if not 0.05 <= self.fraction <= 0.5:
            problems.append(f"fraction must be in [0.05, 0.5], got {self.fraction}")
        if not 2 <= self.folds <= 20:
            problems.append(f"folds must be in 2..20, got {self.folds}")
        if self.min_rows < self.folds:
            problems.append(f"min_rows ({self.min_rows}) must be at least folds ({self.folds})")
        if min(self.holdout_min_rows, self.holdout_min_per_class, self.min_per_class, self.events_per_input) < 1:
            problems.append("row minimums must be positive")
        if not 100 <= self.bootstrap <= 100_000:
            problems.append(f"bootstrap must be in 100..100000, got {self.bootstrap}")
        if problems:
            raise InvalidRequest("invalid validation rules: " + "; ".join(problems))


@dataclass(frozen=True)
class Split:
    """Validation folds (row indices; a fold's training rows are all the others).

    `enough` is False when the validation rows are too few to choose on;
    `problem` then says why in words, without row values or class counts.
    """

    scheme: str
    folds: tuple[np.ndarray, ...]
    rows: int
    enough: bool
    problem: str = ""

    @property
    def description(self) -> str:
        if self.scheme == "holdout":
            return f"a stratified holdout of {self.rows} training rows"
        if self.scheme == "task":
            return f"the task's {self.rows} validation rows, which no candidate trained on"
        return f"{len(self.folds)}-fold cross-fitting over all {self.rows} training rows"

    def training_rows(self, fold: int, n: int) -> np.ndarray:
        keep = np.ones(n, dtype=bool)
        keep[self.folds[fold]] = False
        return np.flatnonzero(keep)


def _groups(y: np.ndarray, binary: bool) -> list[np.ndarray]:
    if not binary:
        return [np.arange(len(y))]
    return [np.flatnonzero(y <= 0.5), np.flatnonzero(y > 0.5)]


def carve(y: np.ndarray, *, binary: bool, rules: ValidationRules, seed: int) -> Split:
    """Plan validation from labels alone: holdout if large enough, else cross-fitting."""
    if seed < 0:
        raise InvalidRequest(f"the seed must be >= 0, got {seed}")
    n = len(y)
    rng = np.random.default_rng([seed, 0x5B117])
    groups = [rng.permutation(g) for g in _groups(np.asarray(y), binary)]
    smallest = min(len(g) for g in groups)
    if n * rules.fraction >= rules.holdout_min_rows and smallest * rules.fraction >= rules.holdout_min_per_class:
        held = np.sort(np.concatenate([g[: round(len(g) * rules.fraction)] for g in groups]))
        folds: tuple[np.ndarray, ...] = (held,)
        scheme, rows = "holdout", len(held)
        per_class = min(round(len(g) * rules.fraction) for g in groups)
    else:
        assignment = np.empty(n, dtype=np.int64)
        offset = 0
        for g in groups:  # deal each class round-robin so every fold gets its share of each class
            assignment[g] = (np.arange(len(g)) + offset) % rules.folds
            offset += len(g)
        folds = tuple(np.flatnonzero(assignment == k) for k in range(rules.folds))
        scheme, rows, per_class = "cross-fit", n, smallest
    problem = ""
    if rows < rules.min_rows:
        problem = f"{rows} validation rows are too few to choose on (at least {rules.min_rows} needed)"
    elif binary and per_class < rules.min_per_class:
        problem = f"one class has fewer than {rules.min_per_class} validation rows, too few to choose on"
    return Split(scheme=scheme, folds=folds if not problem else (), rows=rows, enough=not problem, problem=problem)


def too_few_for_local(y: np.ndarray, *, binary: bool, inputs: int, rules: ValidationRules) -> str:
    """Why these rows are too few for a trustworthy local model, in words ("" if they are enough).

    The words name the threshold, not the class counts, which stay on the node.
    """
    events = min(len(g) for g in _groups(np.asarray(y), binary))
    wanted = rules.events_per_input * max(inputs, 1)
    if events >= wanted:
        return ""
    unit = "rows of the rarer class" if binary else "training rows"
    return (
        f"fewer than {wanted} {unit} ({rules.events_per_input} per each of the model's {inputs} inputs), "
        "too few for a trustworthy local model"
    )


def held_out(y_fitting: np.ndarray, y_validation: np.ndarray, *, binary: bool, rules: ValidationRules) -> Split:
    """The task's own validation rows, placed after the fitting rows: rows no candidate, the global model included, trained on."""
    n_fit, n_valid = len(y_fitting), len(y_validation)
    rows = np.arange(n_fit, n_fit + n_valid)
    groups = _groups(np.asarray(y_validation), binary)
    problem = ""
    if n_valid < rules.min_rows:
        problem = f"{n_valid} validation rows are too few to choose on (at least {rules.min_rows} needed)"
    elif binary and min(len(g) for g in groups) < rules.min_per_class:
        problem = f"one class has fewer than {rules.min_per_class} validation rows, too few to choose on"
    return Split(scheme="task", folds=() if problem else (rows,), rows=n_valid, enough=not problem, problem=problem)
