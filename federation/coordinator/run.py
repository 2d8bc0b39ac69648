"""Federated training: a Flower strategy drives rounds over the node grid.

Each round the strategy sends `train` messages through `NodeGrid` (Fit on
every accepted node) and aggregates with its own code; after each round the
global model is evaluated on every node's test split and checkpointed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from flwr.app import ArrayRecord, MetricRecord
from flwr.serverapp.strategy import FedAvg, FedProx

from federation.coordinator.checkpoint import save_checkpoint
from federation.coordinator.client import NodeClient
from federation.coordinator.grid import NodeGrid, SecureSettings, from_array_record, to_array_record
from federation.coordinator.negotiate import parallel
from federation.coordinator.secure_round import secure_sum
from federation.errors import FederationError, RoundAborted
from federation.models.evaluation import EvalSums, bounded_length, from_bounded, total
from federation.models.training import NamedArrays
from federation.task import RunContext, TaskSpec

log = logging.getLogger(__name__)
RoundCallback = Callable[[int, dict[str, EvalSums]], None]
SECURE_COHORT = "(cohort, summed securely)"  # the one "node" of a securely summed evaluation


def make_strategy(name: str, *, nodes: int, proximal_mu: float) -> FedAvg:
    """A Flower strategy that trains on every accepted node and leaves evaluation to us."""
    if name == "fedavg":
        return FedAvg(
            fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=nodes, min_evaluate_nodes=0, min_available_nodes=nodes
        )
    if name == "fedprox":
        return FedProx(
            fraction_train=1.0,
            fraction_evaluate=0.0,
            min_train_nodes=nodes,
            min_evaluate_nodes=0,
            min_available_nodes=nodes,
            proximal_mu=proximal_mu,
        )
    raise ValueError(f"unknown strategy {name!r}; expected fedavg or fedprox")


def evaluate_everywhere(
    clients: Sequence[NodeClient], context: RunContext, task: TaskSpec, arrays: NamedArrays, failures: list[dict[str, object]]
) -> dict[str, EvalSums]:
    """Evaluate one model on every node's test split; failed nodes are recorded, not fatal."""
    results = parallel(clients, lambda c: c.evaluate(context, task, arrays))
    sums: dict[str, EvalSums] = {}
    for node_id, result in results.items():
        if isinstance(result, FederationError):
            failures.append({"round": context.round, "node": node_id, "rpc": "Evaluate", "error": result.public})
        else:
            sums[node_id] = result
    return sums


def evaluate_securely(
    clients: Sequence[NodeClient],
    context: RunContext,
    task: TaskSpec,
    arrays: NamedArrays,
    settings: SecureSettings,
    failures: list[dict[str, object]],
) -> dict[str, EvalSums]:
    """The cohort's evaluation sums through secure aggregation: no node's own result is ever seen.

    Nodes whose policy releases at most masked updates evaluate only this way,
    so a chosen model cannot read one node's test records off its metrics.
    """
    base = settings.parameters([c.node_id for c in clients], [])
    parameters = replace(base, vector_length=bounded_length() + 1, payload="eval", clip=max(base.clip, 1.0))
    decoded, outcome = secure_sum(clients, context, task, parameters, arrays)
    failures.extend(outcome.errors)
    if decoded is None:
        failures.append({"round": context.round, "node": "*", "rpc": "secure evaluation", "error": outcome.aborted})
        return {}
    return {SECURE_COHORT: from_bounded(decoded[:-1], cap=parameters.max_weight)}


def run_federated(
    clients: Sequence[NodeClient],
    task: TaskSpec,
    initial: NamedArrays,
    *,
    run_id: str,
    purpose: str,
    strategy: str,
    proximal_mu: float,
    checkpoint_dir: Path | None,
    on_round: RoundCallback | None = None,
    secure: SecureSettings | None = None,
    secure_evaluation: SecureSettings | None = None,
    first_round: int = 1,
    on_started: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, EvalSums]], list[dict[str, object]], list[dict[str, object]]]:
    """Train rounds `first_round` to `task.rounds`; returns per-round node metrics, node failures, secure rounds.

    With `secure_evaluation` each round's model is evaluated by a secure sum
    over the cohort (one entry, `SECURE_COHORT`) instead of node by node. A
    resumed run starts later, from `initial` (the last completed round's
    model); `on_started(round)` is told before a round's first call leaves.
    """
    failures: list[dict[str, object]] = []
    rounds: list[dict[str, EvalSums]] = []
    offset = first_round - 1  # Flower counts its rounds from 1; ours continue the run

    def context(flower_round: int) -> RunContext:
        if on_started is not None:
            on_started(flower_round + offset)
        return RunContext(run_id, purpose, flower_round + offset)

    grid = NodeGrid(clients, task=task, context=context, secure=secure)

    def evaluate_fn(flower_round: int, record: ArrayRecord) -> MetricRecord | None:
        if flower_round == 0:
            return None
        server_round = flower_round + offset
        arrays = from_array_record(record)
        if checkpoint_dir is not None:
            save_checkpoint(checkpoint_dir, server_round, arrays)
        context = RunContext(run_id, purpose, server_round)
        if secure_evaluation is not None:
            sums = evaluate_securely(clients, context, task, arrays, secure_evaluation, failures)
        else:
            sums = evaluate_everywhere(clients, context, task, arrays, failures)
        rounds.append(sums)
        if on_round is not None:
            on_round(server_round, sums)
        overall = total(sums.values())
        return MetricRecord({"loss": overall.loss, "accuracy": overall.accuracy, "auc": overall.auc})

    try:
        if task.rounds > offset:
            _start(
                make_strategy(strategy, nodes=len(clients), proximal_mu=proximal_mu),
                grid,
                initial,
                task.rounds - offset,
                timeout=clients[0].timeout if clients else 600.0,
                evaluate_fn=evaluate_fn,
            )
    except RoundAborted as error:
        stopped = f"run stopped: {error.public}"
        failures.append({"round": len(rounds) + first_round, "node": "*", "rpc": "secure aggregation", "error": stopped})
    finally:
        grid.close()
    failures.extend({"round": f.round, "node": f.node_id, "rpc": f.rpc, "error": f.error} for f in grid.failures)
    return rounds, failures, grid.secure_rounds


def _start(
    strategy: FedAvg,
    grid: NodeGrid,
    initial: NamedArrays,
    num_rounds: int,
    *,
    timeout: float,
    evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None],
) -> None:
    strategy.start(grid, to_array_record(initial), num_rounds=num_rounds, timeout=timeout, evaluate_fn=evaluate_fn)
