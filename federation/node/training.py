"""Turning a node's harmonised frame into model inputs for a task, then training.

Inputs are scaled with the task's global statistics; a task without them
falls back to the node's own training-split statistics (local-only runs).
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from federation.data.encoding import encode, encoded_columns, regression_targets, standardise, targets
from federation.data.schema import Schema
from federation.errors import InvalidRequest
from federation.models.registry import OBJECTIVE_MODELS, REGISTRY
from federation.models.training import NamedArrays, flatten
from federation.task import TaskSpec


def check_task_fields(schema: Schema, task: TaskSpec) -> None:
    """Features and target must be canonical fields of this node's schema, the objective the target's kind."""
    unknown = [f for f in (*task.features, task.target) if f not in schema.names]
    if unknown:
        raise InvalidRequest(f"fields {unknown} are not in schema {schema.name!r}")
    if schema.target is None:
        raise InvalidRequest(f"schema {schema.name!r} holds no label: this node trains with others' labels only")
    if task.target != schema.target:
        raise InvalidRequest(f"the target must be {schema.target!r}, got {task.target!r}")
    kind = schema.by_name(task.target).type
    expected = "regression" if kind in ("float", "int") else "binary"
    if task.objective != expected:
        raise InvalidRequest(
            f"the target {task.target!r} is {kind}, so the objective must be {expected!r} "
            f"(metric {'r2, rmse or mae' if expected == 'regression' else 'auc or accuracy'}), not {task.objective!r}"
        )
    allowed = OBJECTIVE_MODELS[task.objective]
    if task.model.name in REGISTRY and task.model.name not in allowed:
        raise InvalidRequest(f"model {task.model.name!r} does not fit a {task.objective} objective; use one of {list(allowed)}")


def target_bound(schema: Schema, task: TaskSpec) -> float | None:
    """A public bound on |target| for a regression (from the schema's min and max), None for a binary task.

    Secure sums of regression errors need it; a schema without the bounds cannot sum them securely.
    """
    if task.objective != "regression":
        return None
    field = schema.by_name(task.target)
    if field.min is None or field.max is None:
        raise InvalidRequest(f"the regression target {task.target!r} needs min and max in the schema to be summed securely")
    return float(max(abs(field.min), abs(field.max), 1e-9))


def validation_split(rows: pd.DataFrame, task: TaskSpec, node_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fitting rows, validation rows): the task's share of the training rows held out, the same for every call.

    Deterministic in the task's seed and the node, so Fit, Evaluate, TrainLocal
    and Export see one split; every topology trains on the fitting rows only.
    """
    if task.validation_fraction <= 0 or len(rows) < 2:
        return rows, rows.iloc[0:0]
    rng = np.random.default_rng(local_seed(task.seed, node_id, 0))
    held = rng.random(len(rows)) < task.validation_fraction
    if held.all() or not held.any():  # keep both sides non-empty
        held = np.zeros(len(rows), dtype=bool)
        held[rng.integers(len(rows))] = True
    return rows[~held], rows[held]


def prepare(schema: Schema, task: TaskSpec, frame: pd.DataFrame, *, reference: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Encoded, scaled features and labels; `reference` gives fallback scaling."""
    check_task_fields(schema, task)
    matrix = encode(frame, schema, task.features)
    columns = encoded_columns(schema, task.features)
    if task.scaling is not None:
        if task.scaling.columns != columns:
            raise InvalidRequest(f"feature scaling is for columns {list(task.scaling.columns)}, the task encodes {list(columns)}")
        mean, std = np.asarray(task.scaling.mean), np.asarray(task.scaling.std)
    else:
        ref = encode(reference, schema, task.features)
        mean = np.nanmean(ref, axis=0) if len(ref) else np.zeros(len(columns))
        std = np.nanstd(ref, axis=0) if len(ref) else np.ones(len(columns))
        mean, std = np.nan_to_num(mean), np.where(np.nan_to_num(std) > 0, np.nan_to_num(std), 1.0)
    y = targets(frame, task.target, task.objective)
    scale = target_scale(task, reference)
    if scale is not None:
        y = ((y - scale[0]) / scale[1]).astype(np.float32)
    return standardise(matrix, mean.tolist(), std.tolist()), y


def target_scale(task: TaskSpec, reference: pd.DataFrame) -> tuple[float, float] | None:
    """A regression target's (mean, std): the task's global one, else `reference`'s own (local-only); None if binary.

    Models learn the standardised target; evaluation turns predictions back into the target's unit.
    """
    if task.objective != "regression":
        return None
    if task.target_scaling is not None:
        return task.target_scaling
    values = regression_targets(reference, task.target).astype(np.float64) if len(reference) else np.zeros(1)
    std = float(values.std())
    return float(values.mean()), std if std > 1e-12 else 1.0


def local_seed(task_seed: int, node_id: str, round_: int) -> int:
    """A per-node, per-round seed: deterministic, yet nodes do not shuffle alike."""
    return (task_seed * 1_000_003 + zlib.crc32(node_id.encode()) + round_ * 7919) % (2**31)


def finite_delta(trained: NamedArrays, start: NamedArrays) -> np.ndarray:
    """The update trained - start, refused if training diverged."""
    delta: np.ndarray = flatten(trained) - flatten(start)
    if not np.all(np.isfinite(delta)):
        raise InvalidRequest("local training diverged (non-finite update); lower the learning rate")
    return delta
