"""Results of one topology run: per-round, per-node evaluation sums and data moved."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from federation.models.evaluation import BINARY_METRICS, REGRESSION_METRICS, EvalSums, total


@dataclass
class TopologyResult:
    """What a topology produced and what it cost."""

    name: str
    kind: str  # federated | central-pool | local-only
    participants: list[str] = field(default_factory=list)
    refusals: dict[str, list[str]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[dict[str, EvalSums]] = field(default_factory=list)  # index = round
    bytes_out: dict[str, int] = field(default_factory=dict)
    bytes_by_rpc: dict[str, dict[str, int]] = field(default_factory=dict)
    raw_records_out: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    secure_aggregation: bool = False
    secure_rounds: list[dict[str, Any]] = field(default_factory=list)
    privacy: dict[str, float] = field(default_factory=dict)
    evaluation: str = "per-node"  # or "secure-sum": only the cohort's summed metrics were released
    started: bool = True
    note: str = ""
    validation: list[dict[str, EvalSums]] = field(default_factory=list)  # index = round, like `rounds`
    chosen: dict[str, int] = field(default_factory=dict)  # node -> the round (from 1) reported: its best on validation
    choices: dict[str, dict[str, Any]] = field(default_factory=dict)  # personalised: node -> its chosen candidate and why

    def choose_best(self, *, per_node: bool) -> None:
        """Early stopping: report the round with the lowest validation loss (the last round without validation rows).

        One round for all nodes when they share a model (federated, central
        pool: the pooled validation loss decides); per node for local-only.
        Ties go to the earlier round.
        """
        if not any(self.validation):
            return
        if per_node:
            nodes = {node for r in self.validation for node in r}
            for node in nodes:
                losses = [(r[node].loss, i) for i, r in enumerate(self.validation, start=1) if node in r]
                self.chosen[node] = min(losses)[1]
            return
        pooled = [(total(r.values()).loss, i) for i, r in enumerate(self.validation, start=1) if r]
        best = min(pooled)[1]
        self.chosen = {node: best for node in self.rounds[best - 1]}

    def final(self) -> dict[str, EvalSums]:
        """Each node's reported sums: its chosen round's, or the last round's."""
        if not self.rounds:
            return {}
        if not self.chosen:
            return self.rounds[-1]
        return {node: self.rounds[r - 1][node] for node, r in sorted(self.chosen.items()) if node in self.rounds[r - 1]}

    def node_metric(self, node_id: str, metric: str) -> float:
        sums = self.final().get(node_id)
        return sums.metric(metric) if sums is not None else float("nan")

    def overall(self, metric: str, round_index: int | None = None) -> float:
        """The metric on the union of the nodes' test rows: of the reported models, or of one round's."""
        if not self.rounds:
            return float("nan")
        sums = self.final() if round_index is None else self.rounds[round_index]
        return total(sums.values()).metric(metric)

    def curve(self, metric: str) -> list[float]:
        return [total(r.values()).metric(metric) for r in self.rounds]

    def to_json(self, metric: str) -> dict[str, Any]:
        def clean(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 6)

        return {
            "name": self.name,
            "kind": self.kind,
            "started": self.started,
            "note": self.note,
            "participants": self.participants,
            "refusals": self.refusals,
            "failures": self.failures,
            "secure_aggregation": self.secure_aggregation,
            "secure_rounds": self.secure_rounds,
            "privacy": self.privacy,
            "evaluation": self.evaluation,
            "rounds": len(self.rounds),
            "wall_seconds": round(self.wall_seconds, 3),
            "overall": {m: clean(self.overall(m)) for m in _metrics(metric)},
            "per_node": {
                node: {**{m: clean(s.metric(m)) for m in _metrics(metric)}, "test_records": s.count}
                for node, s in sorted(self.final().items())
            },
            "chosen_rounds": dict(sorted(self.chosen.items())),
            "choices": dict(sorted(self.choices.items())),
            "validation_curve": [clean(total(r.values()).loss) if r else None for r in self.validation],
            "curve": {metric: [clean(v) for v in self.curve(metric)]},
            "node_curves": {
                node: [clean(r[node].metric(metric)) if node in r else None for r in self.rounds] for node in sorted(self.final())
            },
            "bytes_out": self.bytes_out,
            "bytes_by_rpc": self.bytes_by_rpc,
            "raw_records_out": self.raw_records_out,
        }


def _metrics(metric: str) -> tuple[str, ...]:
    return REGRESSION_METRICS if metric in REGRESSION_METRICS else BINARY_METRICS


def result_to_state(result: TopologyResult) -> dict[str, Any]:
    """Everything of a result, losslessly, for a run directory's progress file (`result_from_state` reads it)."""
    return asdict(result)


def _sums(raw: dict[str, Any]) -> EvalSums:
    return EvalSums(
        **{**raw, "positive_histogram": tuple(raw["positive_histogram"]), "negative_histogram": tuple(raw["negative_histogram"])}
    )


def result_from_state(state: dict[str, Any]) -> TopologyResult:
    known = {f.name for f in fields(TopologyResult)}
    values = {k: v for k, v in state.items() if k in known}
    for name in ("rounds", "validation"):
        values[name] = [{node: _sums(s) for node, s in r.items()} for r in state.get(name, [])]
    values["chosen"] = {str(k): int(v) for k, v in state.get("chosen", {}).items()}
    return TopologyResult(**values)
