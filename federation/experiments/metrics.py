"""Results of one topology run: per-round, per-node evaluation sums and data moved."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from federation.models.evaluation import EvalSums, total


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

    def final(self) -> dict[str, EvalSums]:
        return self.rounds[-1] if self.rounds else {}

    def node_metric(self, node_id: str, metric: str) -> float:
        sums = self.final().get(node_id)
        return sums.metric(metric) if sums is not None else float("nan")

    def overall(self, metric: str, round_index: int = -1) -> float:
        if not self.rounds:
            return float("nan")
        return total(self.rounds[round_index].values()).metric(metric)

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
            "overall": {m: clean(self.overall(m)) for m in ("auc", "accuracy", "loss")},
            "per_node": {
                node: {"auc": clean(s.auc), "accuracy": clean(s.accuracy), "loss": clean(s.loss), "test_records": s.count}
                for node, s in sorted(self.final().items())
            },
            "curve": {metric: [clean(v) for v in self.curve(metric)]},
            "node_curves": {
                node: [clean(r[node].metric(metric)) if node in r else None for r in self.rounds] for node in sorted(self.final())
            },
            "bytes_out": self.bytes_out,
            "bytes_by_rpc": self.bytes_by_rpc,
            "raw_records_out": self.raw_records_out,
        }


def result_to_state(result: TopologyResult) -> dict[str, Any]:
    """Everything of a result, losslessly, for a run directory's progress file (`result_from_state` reads it)."""
    state = asdict(result)
    state["rounds"] = [{node: asdict(sums) for node, sums in r.items()} for r in result.rounds]
    return state


def result_from_state(state: dict[str, Any]) -> TopologyResult:
    rounds = [
        {
            node: EvalSums(
                **{
                    **s,
                    "positive_histogram": tuple(s["positive_histogram"]),
                    "negative_histogram": tuple(s["negative_histogram"]),
                }
            )
            for node, s in r.items()
        }
        for r in state.get("rounds", [])
    ]
    known = {f.name for f in fields(TopologyResult)}
    return TopologyResult(**{**{k: v for k, v in state.items() if k in known}, "rounds": rounds})
