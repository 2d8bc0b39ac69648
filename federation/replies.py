"""What a node answers: plain values shared by the node and the coordinator.

Kept apart from the wire types so that handlers and coordinator logic are
tested without protobuf or a network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FieldDescription:
    """A canonical field a node can offer: its name and type, never values."""

    name: str
    type: str
    unit: str = ""
    codes: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    required: bool = True


@dataclass(frozen=True)
class NodeDescription:
    node_id: str
    kind: str
    scenario: str
    fields: tuple[FieldDescription, ...]
    approx_records: int
    models: tuple[str, ...]
    policy_summary: str
    epsilon_spent: float = 0.0
    epsilon_budget: float | None = None
    quality: QualitySummary | None = None


@dataclass(frozen=True)
class QualitySummary:
    """A node's quality report as counts: never a value or a record."""

    total: int
    kept: int
    excluded: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ProposalAnswer:
    """A node's answer to a task proposal, with the constraints it imposes."""

    accepted: bool
    reasons: tuple[str, ...]
    max_rounds: int = 0
    min_cohort: int = 0
    usable_columns: tuple[str, ...] = ()
    max_release: str = "none"
    clip: float | None = None
    noise_multiplier: float | None = None
    epsilon_spent: float = 0.0
    epsilon_budget: float | None = None
    budget_exhausted: bool = False
    dp_level: str = ""


@dataclass(frozen=True)
class FeatureStats:
    """Per-column count, sum and sum of squares of a node's training split."""

    columns: tuple[str, ...]
    count: tuple[int, ...]
    sum: tuple[float, ...]
    sum_squares: tuple[float, ...]
    histograms: Mapping[str, tuple[tuple[float, ...], tuple[int, ...]]] = field(default_factory=dict)  # column -> (edges, counts)


@dataclass(frozen=True)
class FitOutcome:
    """A locally trained model and the number of examples it was trained on."""

    arrays: list[tuple[str, np.ndarray]] = field(repr=False)
    num_examples: int
    train_loss: float
