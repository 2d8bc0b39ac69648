"""`federation compare` of a vertical experiment: vertical federated, the central pool and the label party alone.

One PSI run first finds the firms every party holds; each party keeps
them, and the rows of every arrangement below are those firms. Then, for
each split seed (every party derives the same split from the keys):

  vertical       every party's columns stay with it; logistic regression on
                 shares (`vertical.program`); the label party tells the
                 coordinator its test measures if its policy names it;
  local-only     the label party alone on its own columns, on its own node
                 (a vertical run of one party: nothing is shared);
  central-pool   the status quo: every party hands its columns with the
                 firms' keys to the platform (`ExportKeyed`, under each
                 policy's "raw" gate, once), which joins them and fits the
                 same model in float, and again without each department
                 (the lift: what the label party loses if one refused).

All three use the same trainer, the same early stopping on the same
validation rows, the same k inspections; a refusal is recorded and the
other arrangements go on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from federation.coordinator.client import NodeClient
from federation.coordinator.psi import each, run_psi
from federation.coordinator.vertical import run_vertical
from federation.errors import FederationError, PolicyDenied
from federation.experiments.vertical_config import VerticalExperiment
from federation.task import RunContext
from federation.vertical.align import roles
from federation.vertical.reference import Settings, fit_float
from federation.vertical.rows import KEY_COLUMN, inputs_from_rows, inspection_measures
from federation.vertical.session import Terms

VERTICAL, CENTRAL, LOCAL = "vertical", "central-pool", "local-only"
NAMES = {VERTICAL: "vertical (on shares)", CENTRAL: "central pool", LOCAL: "local-only"}


@dataclass
class Arrangement:
    """One arrangement over every seed: each run's measures, bytes and raw rows per node, or why it was refused."""

    name: str
    kind: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@dataclass
class VerticalComparison:
    experiment: str
    run_dir: Path
    label: str
    parties: list[str]
    psi: dict[str, Any] = field(default_factory=dict)
    arrangements: list[Arrangement] = field(default_factory=list)
    lift: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # department -> the pool's measures without it

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "vertical",
            "experiment": self.experiment,
            "label": self.label,
            "parties": self.parties,
            "psi": self.psi,
            "arrangements": [asdict(a) for a in self.arrangements],
            "lift": self.lift,
        }


Progress = Callable[[str], None]


def compare_vertical(
    experiment: VerticalExperiment,
    clients: Mapping[str, NodeClient],
    run_dir: Path,
    *,
    progress: Progress | None = None,
) -> VerticalComparison:
    """Run the PSI and every arrangement over every seed; write results.json into `run_dir` (its name stamps the run ids)."""
    stamp = run_dir.name
    run_dir.mkdir(parents=True, exist_ok=True)
    label = experiment.vertical.label
    comparison = VerticalComparison(experiment.name, run_dir, label, list(experiment.parties))
    tick = progress or (lambda _: None)
    psi_terms = experiment.psi.new_terms()
    psi = run_psi(clients, psi_terms, purpose=experiment.purpose)
    comparison.psi = {
        "run_id": psi.terms.run_id,
        "rule": psi.terms.rule,
        "receiver": psi.terms.receiver,
        "set_sizes": psi.sizes,
        "coordinator_count": psi.count,
        "told": psi.told,
        "bytes_by_node": psi.bytes_by_node,
        "seconds": round(psi.seconds, 3),
    }
    tick("private set intersection")
    wanted = experiment.topologies
    arrangements = {kind: Arrangement(NAMES[kind], kind) for kind in (VERTICAL, CENTRAL, LOCAL) if kind in wanted}
    comparison.arrangements = list(arrangements.values())
    pool: _Pool | None = None
    for seed in range(experiment.seeds):
        split_seed = f"{experiment.name}-{stamp}-split-{seed}"
        for kind, arrangement in arrangements.items():
            if arrangement.refused:
                continue
            try:
                if kind == CENTRAL:
                    pool = pool or _Pool(experiment, clients, f"{experiment.name}-{stamp}-export")
                    arrangement.runs.append(pool.run(split_seed, seed))
                    if experiment.vertical.lift:
                        for department, measures in pool.without_each(split_seed, seed).items():
                            comparison.lift.setdefault(department, []).append(measures)
                else:
                    alone = kind == LOCAL
                    terms = experiment.terms(
                        f"{experiment.name}-{stamp}-{kind}-{seed}", psi.terms.run_id, split_seed, alone=alone
                    )
                    arrangement.runs.append(_networked(clients, terms, seed))
            except PolicyDenied as error:
                arrangement.refused = list(error.reasons)
            except FederationError as error:
                arrangement.refused = [error.public]
            tick(f"{arrangement.name}, seed {seed}")
    (run_dir / "results.json").write_text(json.dumps(comparison.to_json(), indent=2) + "\n", encoding="utf-8")
    return comparison


def _networked(clients: Mapping[str, NodeClient], terms: Terms, seed: int) -> dict[str, Any]:
    """A vertical run (or the label party's run alone) and what the label party told of it."""
    outcome = run_vertical({p: clients[p] for p in terms.parties}, terms)
    told = outcome.outcomes.get(terms.label, {})
    measures = told.get("test")
    return {
        "seed": seed,
        "measures": measures if isinstance(measures, dict) else None,  # None: the label party's policy keeps them
        "steps": told.get("steps"),
        "best_step": told.get("best_step"),
        "seconds": round(outcome.seconds, 3),
        "rounds": outcome.rounds,
        "bytes_by_node": outcome.bytes_by_node,
        "raw_rows_by_node": {p: 0 for p in terms.parties},
    }


class _Pool:
    """The city platform's joined table: every party's columns handed over once, then fitted per seed."""

    def __init__(self, experiment: VerticalExperiment, clients: Mapping[str, NodeClient], run_id: str) -> None:
        self.experiment = experiment
        v = experiment.vertical
        self.wanted = {p: [*cs, *([v.target] if p == v.label else [])] for p, cs in v.columns.items()}
        context = RunContext(run_id, experiment.purpose)
        started = time.perf_counter()
        before = {p: clients[p].traffic.bytes_by_rpc["ExportKeyed"] for p in self.wanted}
        tables = each(sorted(self.wanted), lambda p: clients[p].export_keyed(context, self.wanted[p]), len(self.wanted))
        refusals = [f"{p}: {r}" for p, t in tables.items() if isinstance(t, PolicyDenied) for r in t.reasons]
        refusals += [
            f"{p}: {t.public}" for p, t in tables.items() if isinstance(t, FederationError) and not isinstance(t, PolicyDenied)
        ]
        if refusals:
            raise PolicyDenied(["the central pool was not built: a party would not hand over its columns", *refusals])
        self.frames = {p: t.to_pandas().set_index(KEY_COLUMN) for p, t in tables.items() if not isinstance(t, FederationError)}
        self.shared = sorted(set.intersection(*(set(f.index) for f in self.frames.values())))
        self.export_seconds = time.perf_counter() - started
        self.bytes_by_node = {p: clients[p].traffic.bytes_by_rpc["ExportKeyed"] - before[p] for p in self.wanted}
        self.rows_by_node = {p: len(f) for p, f in self.frames.items()}

    def measures(self, split_seed: str, parties: list[str]) -> tuple[dict[str, Any], int, int]:
        v = self.experiment.vertical
        split = roles(self.shared, seed=split_seed, test_fraction=v.test_fraction, validation_fraction=v.validation_fraction)
        inputs = {
            p: inputs_from_rows(
                self.frames[p].reindex(pd.Index(self.shared)).reset_index(drop=True),
                split,
                columns=v.columns[p],
                target=v.target if p == v.label else None,
                where=f"{p}'s columns at the central pool",
            )
            for p in parties
        }
        settings = Settings(v.learning_rate, v.l2, v.max_steps, v.every, v.patience)
        fitted = fit_float(inputs, v.label, settings)
        labels = inputs[v.label].labels
        assert labels is not None
        measures = inspection_measures(fitted.scores, labels, split, inspect_share=v.inspect_share)
        return measures, fitted.history.steps, fitted.history.best_step

    def run(self, split_seed: str, seed: int) -> dict[str, Any]:
        started = time.perf_counter()
        measures, steps, best = self.measures(split_seed, sorted(self.frames))
        return {
            "seed": seed,
            "measures": measures,
            "steps": steps,
            "best_step": best,
            "seconds": round(time.perf_counter() - started + (self.export_seconds if seed == 0 else 0.0), 3),
            "bytes_by_node": self.bytes_by_node if seed == 0 else {p: 0 for p in self.frames},  # handed over once
            "raw_rows_by_node": self.rows_by_node if seed == 0 else {p: 0 for p in self.frames},
            "shared_firms": len(self.shared),
        }

    def without_each(self, split_seed: str, seed: int) -> dict[str, dict[str, Any]]:
        label = self.experiment.vertical.label
        out = {}
        for department in sorted(self.frames):
            if department != label:
                measures, _, _ = self.measures(split_seed, [p for p in sorted(self.frames) if p != department])
                out[department] = {"seed": seed, **measures}
        return out
