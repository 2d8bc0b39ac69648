"""The node's half of personalised federation: candidates from the global model, chosen on its own rows.

Only the choice (candidate, hyperparameters, an aggregate validation summary,
the reason in words) and the chosen model's test sums leave the node. Like
local-only training, those are this node's own results: they need a rule that
releases individual updates, and a run personalises once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from federation.models.evaluation import Scores
from federation.models.training import NamedArrays
from federation.node.training import prepare, validation_split
from federation.task import ParamValue, RunContext, TaskSpec

if TYPE_CHECKING:
    from federation.node.handlers import NodeHandlers
    from federation.personalise import Choice


@dataclass(frozen=True)
class Personalised:
    scores: Scores
    choice: Choice

    def choice_json(self) -> str:
        """The choice as JSON: only aggregates, so it may leave the node."""
        summary = asdict(self.choice.summary)
        return json.dumps(
            {
                "params": dict(self.choice.params),
                "label": self.choice.candidate.label,
                "reason": self.choice.reason,
                "validation": summary,
            },
            allow_nan=False,
            default=str,
        )


def personalise_here(
    node: NodeHandlers,
    caller: str,
    context: RunContext,
    task: TaskSpec,
    arrays: NamedArrays,
    methods: Mapping[str, Mapping[str, ParamValue]],
    criterion: str = "loss",
) -> Personalised:
    """Authorise, then build and choose the candidates on this node's fitting rows; score the choice on its test rows."""
    from federation.personalise import personalise, task_objective  # torch: imported when a node personalises

    with node.audited(caller, "Personalise", context) as entry:
        node.individual_results(node.authorise(caller, context, "stats", task))
        node.runs.claim_evaluation(caller, context, task)
        rt = node.runtime
        train_rows, _ = rt.split_for(task.view, task.test_draw)
        fitting, held_out = validation_split(train_rows, task, rt.node_id)
        x, y = prepare(rt.schema, task, fitting, reference=train_rows)
        validation = prepare(rt.schema, task, held_out, reference=train_rows) if len(held_out) else None
        model, choice = personalise(
            arrays,
            task.model,
            x,
            y,
            methods=methods,
            objective=task_objective(
                objective=task.objective,
                batch_size=task.batch_size,
                learning_rate=task.learning_rate,
                weight_decay=task.weight_decay,
            ),
            init_seed=task.seed,
            seed=task.seed + 17,
            criterion=criterion,
            validation=validation,
        )
        scores = node.scores(task, model)
        entry.rows = len(train_rows) + scores.test.count
        entry.reasons = [*entry.reasons, f"chose {choice.candidate.label}"]
        entry.bytes_released = 8 * (7 + 2 * len(scores.test.positive_histogram)) + 512
        return Personalised(Scores(scores.test), choice)


def methods_from_json(raw: Any) -> dict[str, dict[str, ParamValue]]:
    """Methods as the wire carries them: a mapping of names to mappings of hyperparameters."""
    return {str(k): dict(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}
