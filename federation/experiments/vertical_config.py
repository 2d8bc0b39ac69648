"""A vertical experiment file: departments holding different columns about the same firms.

    kind = "vertical"
    seeds = 3                                 # split seeds; every figure is reported with its spread
    topologies = ["vertical", "central-pool", "local-only"]
    [psi]                                     # how the shared firms are found (see psi_config)
    receiver = "ecology-bureau"
    membership = ["water-bureau", ...]        # every party of the run must learn which firms are shared
    [vertical]
    label = "ecology-bureau"                  # whose labels train the model; it alone learns the scores
    compute = "water-bureau"                  # the second compute party
    helper = "statistics-bureau"              # deals correlated randomness
    target = "violation"
    [vertical.columns]                        # which party contributes which columns (one owner each)
    ecology-bureau = ["outflow", "cod"]
    water-bureau = ["intake"]

Every inconsistency is found when the file loads: a column named for two
parties, a role given to a party that contributes nothing, a party that
would have no rows because the PSI run does not tell it the shared firms.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from federation.config import StrictModel, load_toml, read_toml
from federation.errors import ConfigError, InvalidRequest
from federation.experiments.config import NodeEntry, check_unique_nodes
from federation.experiments.psi_config import PsiExperiment, PsiExperimentFile, PsiSection
from federation.vertical.session import Terms

VerticalTopology = Literal["vertical", "central-pool", "local-only"]


class VerticalSection(StrictModel):
    label: str
    compute: str
    helper: str
    target: str
    columns: dict[str, tuple[str, ...]] = Field(min_length=1)
    test_fraction: float = Field(default=0.3, gt=0, lt=1)
    validation_fraction: float = Field(default=0.15, ge=0, lt=1)
    learning_rate: float = Field(default=2.0, gt=0, le=100)
    l2: float = Field(default=1e-3, ge=0)
    max_steps: int = Field(default=600, ge=1, le=100_000)
    every: int = Field(default=5, ge=1)
    patience: int = Field(default=4, ge=1)
    inspect_share: float = Field(default=0.05, gt=0, le=1, description="k inspections = this share of the test firms")
    lift: bool = True  # also pool without each department: what the label party loses if one refused


class VerticalExperimentFile(StrictModel):
    kind: Literal["vertical"]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    purpose: str
    coordinator: str
    pki: Path
    output: Path
    timeout: float = Field(default=300.0, gt=0)
    topologies: tuple[VerticalTopology, ...] = Field(default=("vertical", "central-pool", "local-only"), min_length=1)
    seeds: int = Field(default=3, ge=1, le=100)
    psi: PsiSection
    vertical: VerticalSection
    node: tuple[NodeEntry, ...] = Field(min_length=3)

    @model_validator(mode="after")
    def _consistent(self) -> VerticalExperimentFile:
        check_unique_nodes(self.node)
        listed = {n.id for n in self.node}
        unknown = sorted(set(self.vertical.columns) - listed)
        if unknown:
            raise ValueError(f"vertical.columns names {unknown}, which are not nodes of the experiment")
        told = {self.psi.receiver, *self.psi.membership}
        blind = sorted(set(self.vertical.columns) - told)
        if blind:
            raise ValueError(
                f"psi: {blind} would not learn which firms are shared, so they would have no rows (add to membership)"
            )
        return self


class VerticalExperiment:
    """A validated vertical experiment with absolute paths; `terms` builds each run's terms."""

    def __init__(self, path: Path, parsed: VerticalExperimentFile) -> None:
        base = path.resolve().parent
        self.path = path
        self.parsed = parsed
        self.name, self.purpose, self.coordinator = parsed.name, parsed.purpose, parsed.coordinator
        self.pki_dir = (base / parsed.pki).resolve()
        self.output_dir = (base / parsed.output).resolve()
        self.timeout = parsed.timeout
        self.topologies = parsed.topologies
        self.seeds = parsed.seeds
        self.vertical = parsed.vertical
        self.nodes = [(n.id, n.address, (base / n.manifest).resolve() if n.manifest else None) for n in parsed.node]
        psi_file = PsiExperimentFile(
            kind="psi",
            name=parsed.name,
            purpose=parsed.purpose,
            coordinator=parsed.coordinator,
            pki=parsed.pki,
            output=parsed.output,
            timeout=parsed.timeout,
            psi=parsed.psi,
            node=parsed.node,
        )
        self.psi = PsiExperiment(path, psi_file)
        self.terms("check", "check", "check")  # every inconsistency of the file is found at load
        self.terms("check", "check", "check", alone=True)

    @property
    def parties(self) -> tuple[str, ...]:
        return tuple(sorted(self.vertical.columns))

    def terms(self, run_id: str, psi_run: str, split_seed: str, *, alone: bool = False, without: str | None = None) -> Terms:
        """The terms of one run; `alone`: the label party on its own columns; `without`: one party left out."""
        v = self.vertical
        columns = {p: tuple(c) for p, c in v.columns.items() if p != without}
        compute, helper = v.compute, v.helper
        if alone:
            columns, compute, helper = {v.label: columns.get(v.label, ())}, v.label, v.label
        try:
            return Terms(
                run_id,
                psi_run,
                self.purpose,
                v.label,
                compute,
                helper,
                columns,
                v.target,
                split_seed,
                test_fraction=v.test_fraction,
                validation_fraction=v.validation_fraction,
                learning_rate=v.learning_rate,
                l2=v.l2,
                max_steps=v.max_steps,
                every=v.every,
                patience=v.patience,
                inspect_share=v.inspect_share,
            )
        except InvalidRequest as error:
            raise ConfigError(str(self.path), [f"vertical: {error.public}"]) from None

    def run_id(self, stamp: str, what: str) -> str:
        return f"{self.name}-{stamp}-{what}"

    @staticmethod
    def new_stamp() -> str:
        return secrets.token_hex(4)


def experiment_kind(path: Path) -> str:
    """`kind` of an experiment file: "vertical", "psi", or "horizontal" (the default: same columns, other records)."""
    kind = read_toml(path).get("kind", "horizontal")
    return str(kind)


def load_vertical_experiment(path: Path) -> VerticalExperiment:
    return VerticalExperiment(path, load_toml(path, VerticalExperimentFile))
