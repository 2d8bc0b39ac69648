"""Turning a node's harmonised frame into model inputs for a task, then training.

Inputs are scaled with the task's global statistics; a task without them
falls back to the node's own training-split statistics (local-only runs).
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from federation.data.encoding import encode, encoded_columns, labels, standardise
from federation.data.schema import Schema
from federation.errors import InvalidRequest
from federation.models.training import NamedArrays, flatten
from federation.task import TaskSpec


def check_task_fields(schema: Schema, task: TaskSpec) -> None:
    """Features and target must be canonical fields of this node's schema."""
    unknown = [f for f in (*task.features, task.target) if f not in schema.names]
    if unknown:
        raise InvalidRequest(f"fields {unknown} are not in schema {schema.name!r}")
    if task.target != schema.target:
        raise InvalidRequest(f"the target must be {schema.target!r}, got {task.target!r}")


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
    return standardise(matrix, mean.tolist(), std.tolist()), labels(frame, task.target)


def local_seed(task_seed: int, node_id: str, round_: int) -> int:
    """A per-node, per-round seed: deterministic, yet nodes do not shuffle alike."""
    return (task_seed * 1_000_003 + zlib.crc32(node_id.encode()) + round_ * 7919) % (2**31)


def finite_delta(trained: NamedArrays, start: NamedArrays) -> np.ndarray:
    """The update trained - start, refused if training diverged."""
    delta: np.ndarray = flatten(trained) - flatten(start)
    if not np.all(np.isfinite(delta)):
        raise InvalidRequest("local training diverged (non-finite update); lower the learning rate")
    return delta
