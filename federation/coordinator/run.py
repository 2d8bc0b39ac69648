"""Federated training: a Flower strategy drives rounds over the node grid.

Each round the strategy sends `train` messages through `NodeGrid` (Fit on
every accepted node) and aggregates with its own code; after each round the
global model is evaluated on every node's test split and checkpointed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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


Evaluated = tuple[dict[str, EvalSums], dict[str, EvalSums]]  # test sums and validation sums, by node


def evaluate_everywhere(
    clients: Sequence[NodeClient], context: RunContext, task: TaskSpec, arrays: NamedArrays, failures: list[dict[str, object]]
) -> Evaluated:
    """Evaluate one model on every node's test (and validation) rows; failed nodes are recorded, not fatal."""
    results = parallel(clients, lambda c: c.evaluate(context, task, arrays))
    sums: dict[str, EvalSums] = {}
    validation: dict[str, EvalSums] = {}
    for node_id, result in results.items():
        if isinstance(result, FederationError):
            failures.append({"round": context.round, "node": node_id, "rpc": "Evaluate", "error": result.public})
            continue
        sums[node_id] = result.test
        if result.validation is not None:
            validation[node_id] = result.validation
    return sums, validation


def evaluate_securely(
    clients: Sequence[NodeClient],
    context: RunContext,
    task: TaskSpec,
    arrays: NamedArrays,
    settings: SecureSettings,
    failures: list[dict[str, object]],
    target_bound: float | None = None,
) -> Evaluated:
    """The cohort's evaluation sums through secure aggregation: no node's own result is ever seen.

    Nodes whose policy releases at most masked updates evaluate only this way,
    so a chosen model cannot read one node's test records off its metrics.
    The vector holds the test sums, then the validation sums if the task holds
    validation rows out; a regression's sums are bounded by `target_bound`.
    """
    regression = target_bound is not None
    one = bounded_length(regression=regression)
    parts = 2 if task.validation_fraction > 0 else 1
    base = settings.parameters([c.node_id for c in clients], [])
    parameters = replace(base, vector_length=parts * one + 1, payload="eval", clip=max(base.clip, 1.0))
    decoded, outcome = secure_sum(clients, context, task, parameters, arrays)
    failures.extend(outcome.errors)
    if decoded is None:
        failures.append({"round": context.round, "node": "*", "rpc": "secure evaluation", "error": outcome.aborted})
        return {}, {}
    cap = parameters.max_weight
    test = {SECURE_COHORT: from_bounded(decoded[:one], cap=cap, target_bound=target_bound)}
    if parts == 1:
        return test, {}
    return test, {SECURE_COHORT: from_bounded(decoded[one : 2 * one], cap=cap, target_bound=target_bound)}


@dataclass
class FederatedOutcome:
    rounds: list[dict[str, EvalSums]]  # test sums per round and node
    validation: list[dict[str, EvalSums]]  # validation sums, the same way (empty dicts without validation rows)
    failures: list[dict[str, object]]
    secure_rounds: list[dict[str, object]]


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
    on_evaluated: Callable[[int, dict[str, EvalSums], dict[str, EvalSums]], None] | None = None,
    target_bound: float | None = None,
) -> FederatedOutcome:
    """Train rounds `first_round` to `task.rounds`; returns per-round node metrics, node failures, secure rounds.

    With `secure_evaluation` each round's model is evaluated by a secure sum
    over the cohort (one entry, `SECURE_COHORT`) instead of node by node. A
    resumed run starts later, from `initial` (the last completed round's
    model); `on_started(round)` is told before a round's first call leaves.
    """
    failures: list[dict[str, object]] = []
    rounds: list[dict[str, EvalSums]] = []
    validation: list[dict[str, EvalSums]] = []
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
            sums, held_out = evaluate_securely(clients, context, task, arrays, secure_evaluation, failures, target_bound)
        else:
            sums, held_out = evaluate_everywhere(clients, context, task, arrays, failures)
        rounds.append(sums)
        validation.append(held_out)
        if on_evaluated is not None:
            on_evaluated(server_round, sums, held_out)
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
    return FederatedOutcome(rounds, validation, failures, grid.secure_rounds)


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
