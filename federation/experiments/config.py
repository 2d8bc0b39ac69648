"""The experiment file: which nodes, which task, which topologies.

Relative paths are resolved against the experiment file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from federation.config import StrictModel, load_toml
from federation.errors import ConfigError, InvalidRequest
from federation.models.evaluation import REGRESSION_METRICS
from federation.models.registry import OBJECTIVE_MODELS, REGISTRY
from federation.task import ModelSpec, ParamValue, TaskSpec

Topology = Literal["federated", "personalised", "central-pool", "local-only"]
StrategyName = Literal["fedavg", "fedprox"]


class TaskSection(StrictModel):
    model: str
    params: dict[str, ParamValue] = Field(default_factory=dict)
    features: tuple[str, ...] = Field(min_length=1)
    target: str
    rounds: int = Field(default=10, ge=1, le=10_000)
    local_epochs: int = Field(default=1, ge=1, le=1000)
    batch_size: int = Field(default=32, ge=1)
    learning_rate: float = Field(default=0.01, gt=0, le=10)
    seed: int = 0
    seeds: tuple[int, ...] = Field(default=(), description="seeds `compare --seeds` repeats the comparison over")
    metric: Literal["auc", "accuracy", "r2", "rmse", "mae"] = "auc"  # r2, rmse, mae: a regression (squared error)
    weight_decay: float = Field(default=0.0, ge=0, le=1)
    validation_fraction: float = Field(
        default=0.2, ge=0, le=0.5, description="training rows each party holds out to pick its best round; 0: the last round"
    )

    @model_validator(mode="after")
    def _model_fits_metric(self) -> TaskSection:
        objective = "regression" if self.metric in REGRESSION_METRICS else "binary"
        allowed = OBJECTIVE_MODELS[objective]
        if self.model in REGISTRY and self.model not in allowed:
            problem = f"model {self.model!r} does not fit metric {self.metric!r} ({objective})"
            raise ValueError(f"{problem}; use one of {list(allowed)}")
        return self


class FederatedSection(StrictModel):
    strategies: tuple[StrategyName, ...] = ("fedavg",)
    proximal_mu: float = Field(default=0.01, ge=0)


def _default_methods() -> dict[str, dict[str, ParamValue]]:
    return {"global": {}, "finetune": {}, "interpolate": {}, "ditto": {}}


class PersonalisedSection(StrictModel):
    """Candidates each node builds from the federated model (see `federation.personalise`); no code is shipped."""

    methods: dict[str, dict[str, ParamValue]] = Field(default_factory=_default_methods)
    # what each node judges its candidates on: "metric" is the AUC when the task's metric is, else the task's loss
    criterion: Literal["metric", "loss", "auc"] = "metric"


class SecureAggregationSection(StrictModel):
    mode: Literal["auto", "always", "never"] = "auto"
    clip: float = Field(default=1.0, gt=0)
    threshold: int = Field(default=0, ge=0)
    degree: int = Field(default=0, ge=0)
    on_abort: Literal["continue", "stop"] = "continue"


class PrivacySection(StrictModel):
    """The analyst's target: the model's differential privacy, whatever the nodes' policies demand on top.

    Federated runs apply it as client-level DP (every node clips and adds its noise
    share); the central pool as central DP (the trusted coordinator trains with
    DP-SGD); local-only models never leave their node and need none. inf: no DP.
    """

    epsilon: float = Field(default=float("inf"), gt=0)
    delta: float = Field(default=1e-5, gt=0, lt=1)
    clip: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    level: Literal["client", "record"] = "record"  # federated runs: protect records (DP-SGD on nodes) or whole nodes


class HarmonisationSection(StrictModel):
    compare_naive: bool = False  # also train on the same records read naively (by position, no conversion)


class NodeEntry(StrictModel):
    id: str
    address: str | None = None
    manifest: Path | None = None


def check_unique_nodes(nodes: tuple[NodeEntry, ...]) -> None:
    ids = [n.id for n in nodes]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"nodes listed twice: {repeated}")


class ExperimentFile(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    purpose: str
    coordinator: str
    pki: Path
    output: Path
    topologies: tuple[Topology, ...] = ("federated", "personalised", "central-pool", "local-only")
    timeout: float = Field(default=300.0, gt=0, description="seconds one call to a node may take before it counts as failed")
    task: TaskSection
    federated: FederatedSection = FederatedSection()
    personalised: PersonalisedSection = PersonalisedSection()
    secure_aggregation: SecureAggregationSection = SecureAggregationSection()
    harmonisation: HarmonisationSection = HarmonisationSection()
    privacy: PrivacySection = PrivacySection()
    node: tuple[NodeEntry, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_nodes(self) -> ExperimentFile:
        check_unique_nodes(self.node)
        return self


class Experiment:
    """A validated experiment with absolute paths and a ready TaskSpec."""

    def __init__(self, path: Path, parsed: ExperimentFile) -> None:
        base = path.resolve().parent
        self.path = path
        self.parsed = parsed
        self.name = parsed.name
        self.purpose = parsed.purpose
        self.coordinator = parsed.coordinator
        self.pki_dir = (base / parsed.pki).resolve()
        self.output_dir = (base / parsed.output).resolve()
        self.topologies = parsed.topologies
        self.timeout = parsed.timeout
        self.metric = parsed.task.metric
        self.seeds = parsed.task.seeds
        self.strategies = parsed.federated.strategies
        self.proximal_mu = parsed.federated.proximal_mu
        self.personalised_methods = dict(parsed.personalised.methods)
        wanted = parsed.personalised.criterion
        self.personalised_criterion = ("auc" if parsed.task.metric == "auc" else "loss") if wanted == "metric" else wanted
        self.secure = parsed.secure_aggregation
        self.compare_naive = parsed.harmonisation.compare_naive
        self.privacy = parsed.privacy
        self.nodes = [(n.id, n.address, (base / n.manifest).resolve() if n.manifest else None) for n in parsed.node]
        t = parsed.task
        try:
            self.task = TaskSpec(
                model=ModelSpec(t.model, dict(t.params)),
                features=t.features,
                target=t.target,
                rounds=t.rounds,
                local_epochs=t.local_epochs,
                batch_size=t.batch_size,
                learning_rate=t.learning_rate,
                seed=t.seed,
                objective="regression" if t.metric in REGRESSION_METRICS else "binary",
                weight_decay=t.weight_decay,
                validation_fraction=t.validation_fraction,
            )
        except InvalidRequest as error:
            raise ConfigError(str(path), [f"task: {error.public}"]) from error
        if self.personalised_criterion == "auc" and self.task.objective != "binary":
            problem = f"personalised.criterion: auc needs a binary target, but task.metric {t.metric!r} is a regression"
            raise ConfigError(str(path), [problem])

    def addresses(self, overrides: dict[str, str]) -> dict[str, str]:
        """Node id -> address, from the file or `overrides`; every gap is reported."""
        result, missing = {}, []
        for node_id, address, _ in self.nodes:
            chosen = overrides.get(node_id, address)
            if chosen is None:
                missing.append(f"node {node_id!r} has no address (set node[].address or pass --address {node_id}=HOST:PORT)")
            else:
                result[node_id] = chosen
        unknown = sorted(set(overrides) - {n for n, _, _ in self.nodes})
        missing += [f"--address names {u!r}, which is not a node of this experiment" for u in unknown]
        if missing:
            raise ConfigError(str(self.path), missing)
        return result


def load_experiment(path: Path) -> Experiment:
    return Experiment(path, load_toml(path, ExperimentFile))
