"""What a coordinator asks a node to compute: a run context and a declarative task.

Nodes only run tasks built from these values and the model registry; no code
ever travels to a node. The values check themselves so that a malformed task
from the network fails as `InvalidRequest` before anything runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from federation.errors import InvalidRequest

ParamValue = bool | int | float | str | list[int] | list[float]
MAX_NAME = 200
_NAME = re.compile(rf"[\w.:/@+ -]{{1,{MAX_NAME}}}")


@dataclass(frozen=True)
class RunContext:
    """Identifies one call of a run: every RPC carries it, every log line names it."""

    run_id: str
    purpose: str
    round: int = 0

    def __post_init__(self) -> None:
        if not self.run_id or not self.purpose:
            raise InvalidRequest("the run context needs a run id and a purpose")
        for label, value in (("run id", self.run_id), ("purpose", self.purpose)):
            if not _NAME.fullmatch(value):  # they reach logs, audit lines and terminals: no controls, no markup
                raise InvalidRequest(
                    f"the {label} must be 1-{MAX_NAME} letters, digits, spaces or . _ : / @ + - (got {len(value)} characters)"
                )
        if self.round < 0:
            raise InvalidRequest(f"round must be >= 0, got {self.round}")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model name and its hyperparameters."""

    name: str
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, value in self.params.items():
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                raise InvalidRequest(f"model parameter {key!r} must be finite, got {value!r}")


@dataclass(frozen=True)
class FeatureScaling:
    """Global standardisation of encoded columns, computed from federated statistics."""

    columns: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if not len(self.columns) == len(self.mean) == len(self.std):
            raise InvalidRequest("feature scaling needs one mean and one std per column")
        if any(not math.isfinite(s) or s <= 0 for s in self.std):
            raise InvalidRequest("feature scaling std values must be finite and positive")
        if any(not math.isfinite(m) for m in self.mean):
            raise InvalidRequest("feature scaling mean values must be finite")


@dataclass(frozen=True)
class PrivacySpec:
    """Client-level DP for a run: clip each update to `clip` (L2), noise of scale noise_multiplier * clip."""

    noise_multiplier: float
    clip: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.noise_multiplier) and self.noise_multiplier > 0):
            raise InvalidRequest(f"the noise multiplier must be positive, got {self.noise_multiplier}")
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise InvalidRequest(f"the privacy clip must be positive, got {self.clip}")


@dataclass(frozen=True)
class RecordPrivacy:
    """Record-level DP for a run: every node trains with DP-SGD so its records are (epsilon, delta)-DP."""

    epsilon: float
    delta: float
    clip: float

    def __post_init__(self) -> None:
        if not (
            math.isfinite(self.epsilon) and self.epsilon > 0 and 0 < self.delta < 1 and math.isfinite(self.clip) and self.clip > 0
        ):
            raise InvalidRequest(f"invalid record-level privacy: epsilon {self.epsilon}, delta {self.delta}, clip {self.clip}")


OBJECTIVES = ("binary", "regression")
CRITERIA = ("loss", "auc")  # what personalisation judges candidates on (see `personalise.criteria`)
VALIDATION_COLUMN = "__validation__"  # in an export: the row is one its node holds out for validation


@dataclass(frozen=True)
class TaskSpec:
    """A training task: model, features, target and the training budget per round."""

    model: ModelSpec
    features: tuple[str, ...]
    target: str
    rounds: int = 10
    local_epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 0.01
    proximal_mu: float = 0.0
    seed: int = 0
    scaling: FeatureScaling | None = None
    privacy: PrivacySpec | None = None
    view: str = "harmonised"  # or "naive": the baseline that reads local files without harmonisation
    record_privacy: RecordPrivacy | None = None
    objective: str = "binary"  # or "regression": squared error on a numeric target
    weight_decay: float = 0.0  # AdamW's decoupled weight decay, the same for every topology
    validation_fraction: float = 0.0  # training rows each party holds out to pick its best round (early stopping)
    target_scaling: tuple[float, float] | None = None  # a regression target's global (mean, std), from Stats
    # which train/test split: 0 is the node's own; n >= 1 its n-th re-draw (seeded by the node's secret split seed and n)
    test_draw: int = 0

    @property
    def stats_fields(self) -> tuple[str, ...]:
        """The fields `Stats` summarises: the features, and a regression's target (for its standardisation)."""
        return (*self.features, self.target) if self.objective == "regression" else self.features

    def __post_init__(self) -> None:
        problems = []
        if not self.features:
            problems.append("a task needs at least one feature")
        if len(set(self.features)) != len(self.features):
            problems.append("features must not repeat")
        if self.target in self.features:
            problems.append(f"the target {self.target!r} cannot also be a feature")
        if not self.target:
            problems.append("a task needs a target")
        if not 1 <= self.rounds <= 10_000:
            problems.append(f"rounds must be in 1..10000, got {self.rounds}")
        if not 1 <= self.local_epochs <= 1_000:
            problems.append(f"local_epochs must be in 1..1000, got {self.local_epochs}")
        if not 1 <= self.batch_size <= 1_000_000:
            problems.append(f"batch_size must be in 1..1000000, got {self.batch_size}")
        if not (math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 10):
            problems.append(f"learning_rate must be in (0, 10], got {self.learning_rate}")
        if self.view not in ("harmonised", "naive"):
            problems.append(f"view must be 'harmonised' or 'naive', got {self.view!r}")
        if not (math.isfinite(self.proximal_mu) and self.proximal_mu >= 0):
            problems.append(f"proximal_mu must be >= 0, got {self.proximal_mu}")
        if self.objective not in OBJECTIVES:
            problems.append(f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        if not (math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= 1):
            problems.append(f"weight_decay must be in [0, 1], got {self.weight_decay}")
        if self.target_scaling is not None and not (
            all(math.isfinite(v) for v in self.target_scaling) and self.target_scaling[1] > 0
        ):
            problems.append(f"target_scaling must be a finite mean and a positive std, got {self.target_scaling}")
        if not (math.isfinite(self.validation_fraction) and 0 <= self.validation_fraction <= 0.5):
            problems.append(f"validation_fraction must be in [0, 0.5], got {self.validation_fraction}")
        if not 0 <= self.test_draw < 2**31:
            problems.append(f"test_draw must be in 0..2147483647, got {self.test_draw}")
        if problems:
            raise InvalidRequest("invalid task: " + "; ".join(problems))

    def with_scaling(self, scaling: FeatureScaling) -> TaskSpec:
        """The same task with global scaling attached: of the features, and of a regression's target (its last column)."""
        if self.objective != "regression" or not scaling.columns or scaling.columns[-1] != self.target:
            return replace(self, scaling=scaling)
        features = FeatureScaling(scaling.columns[:-1], scaling.mean[:-1], scaling.std[:-1])
        return replace(self, scaling=features, target_scaling=(scaling.mean[-1], scaling.std[-1]))
