"""The three arrangements of the same network, run on the same splits and seeds.

- federated: data stays on the nodes; a Flower strategy aggregates updates;
- central-pool: nodes whose policy allows it export harmonised rows, the
  coordinator trains one model on the pool (the centralising status quo);
- local-only: each node trains alone (a data island); only metrics leave.

Every topology trains for the same rounds x local epochs and is evaluated
on every node's own test split through `Evaluate`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa

from federation.coordinator.client import NodeClient
from federation.coordinator.grid import SecureSettings
from federation.coordinator.negotiate import Negotiation, negotiate, parallel
from federation.coordinator.run import evaluate_everywhere, run_federated
from federation.data.encoding import encode, standardise, targets
from federation.data.schema import Schema, SchemaField
from federation.errors import FederationError, InvalidRequest
from federation.experiments.metrics import TopologyResult
from federation.models.evaluation import EvalSums
from federation.models.registry import build_model
from federation.models.training import NamedArrays, get_arrays, train
from federation.policy.evaluate import sampling
from federation.privacy.accounting import noise_for_budget
from federation.privacy.dpsgd import train_dp_sgd
from federation.replies import NodeDescription
from federation.task import VALIDATION_COLUMN, ParamValue, PrivacySpec, RunContext, TaskSpec

RoundCallback = Callable[[int, dict[str, EvalSums]], None]


@dataclass(frozen=True)
class Resume:
    """Where a federated topology continues: its first round, the model to start from, the rounds already done."""

    first_round: int
    model: NamedArrays | None  # None: a new model (the run starts at round 1)
    completed: list[dict[str, EvalSums]]
    completed_validation: list[dict[str, EvalSums]]
    on_started: Callable[[int], None]
    on_evaluated: Callable[[int, dict[str, EvalSums], dict[str, EvalSums]], None]


def _traffic_snapshot(clients: Sequence[NodeClient]) -> dict[str, tuple[dict[str, int], int]]:
    return {c.node_id: (dict(c.traffic.bytes_by_rpc), c.traffic.raw_records) for c in clients}


def _record_traffic(result: TopologyResult, clients: Sequence[NodeClient], before: dict[str, tuple[dict[str, int], int]]) -> None:
    for client in clients:
        by_rpc_before, raw_before = before[client.node_id]
        by_rpc = {k: v - by_rpc_before.get(k, 0) for k, v in client.traffic.bytes_by_rpc.items() if v - by_rpc_before.get(k, 0)}
        result.bytes_by_rpc[client.node_id] = by_rpc
        result.bytes_out[client.node_id] = sum(by_rpc.values())
        result.raw_records_out[client.node_id] = client.traffic.raw_records - raw_before


def _refused(result: TopologyResult, negotiation: Negotiation) -> TopologyResult:
    result.refusals = negotiation.refusals
    result.participants = [c.node_id for c in negotiation.accepted]
    if not negotiation.can_start:
        result.started = False
        result.note = (
            f"not started: {len(negotiation.accepted)} node(s) accepted, "
            f"the participants require a cohort of at least {negotiation.min_cohort}"
        )
    return result


def schema_from_description(description: NodeDescription, target: str) -> Schema:
    """The canonical schema as a node describes it (names, types, codes; no values)."""
    fields = [
        SchemaField(name=f.name, type=f.type, unit=f.unit, codes=f.codes, min=f.min, max=f.max, required=f.required)
        for f in description.fields
    ]
    return Schema(name=description.scenario, target=target, field=tuple(fields))


def initial_model(task: TaskSpec) -> NamedArrays:
    if task.scaling is None:
        raise InvalidRequest("the task needs global feature scaling before training")
    return get_arrays(build_model(task.model, len(task.scaling.columns), seed=task.seed))


def federated(
    clients: Sequence[NodeClient],
    task: TaskSpec,
    *,
    run_id: str,
    purpose: str,
    strategy: str,
    proximal_mu: float,
    checkpoint_dir: Path | None,
    on_round: RoundCallback | None = None,
    secure_mode: str = "auto",
    secure: SecureSettings | None = None,
    label: str | None = None,
    resume: Resume | None = None,
    target_bound: float | None = None,
) -> TopologyResult:
    """Federated training; secure aggregation when asked, or when any node releases only masked updates.

    With `resume` the run continues after its interrupted round, from the last completed round's model.
    """
    start = time.perf_counter()
    before = _traffic_snapshot(clients)
    result = TopologyResult(name=label or f"federated ({strategy})", kind="federated")
    task = replace(task, proximal_mu=proximal_mu if strategy == "fedprox" else 0.0)
    release = "update" if secure_mode == "never" else "masked-update"
    negotiation = negotiate(clients, RunContext(run_id, purpose), task, release=release)
    if not _refused(result, negotiation).started:
        return result
    if negotiation.privacy is not None:  # every node applies the tightest noise and clip any of them demands
        demanded = negotiation.privacy
        if task.privacy is not None:
            demanded = PrivacySpec(
                max(demanded.noise_multiplier, task.privacy.noise_multiplier), min(demanded.clip, task.privacy.clip)
            )
        task = replace(task, privacy=demanded)
    if task.privacy is not None:
        result.privacy = {"noise_multiplier": task.privacy.noise_multiplier, "clip": task.privacy.clip}
    elif task.record_privacy is not None:
        result.privacy = {"record": 1.0, "epsilon": task.record_privacy.epsilon, "clip": task.record_privacy.clip}
    masked_only = sorted(n for n, level in negotiation.max_release.items() if level == "masked-update")
    use_secure = secure_mode == "always" or (secure_mode == "auto" and bool(masked_only))
    if use_secure and secure is None:
        raise InvalidRequest("secure aggregation needs its settings")
    result.secure_aggregation = use_secure
    if use_secure and len(negotiation.accepted) < 2:
        result.started, result.note = False, "not started: secure aggregation needs at least two nodes"
        return result
    secure_evaluation = bool(masked_only) and secure is not None  # such nodes release evaluation results only summed
    result.evaluation = "secure-sum" if secure_evaluation else "per-node"
    first_round = resume.first_round if resume is not None else 1
    initial = resume.model if resume is not None and resume.model is not None else initial_model(task)
    outcome = run_federated(
        negotiation.accepted,
        task,
        initial,
        run_id=run_id,
        purpose=purpose,
        strategy=strategy,
        proximal_mu=proximal_mu,
        checkpoint_dir=checkpoint_dir,
        on_round=on_round,
        secure=secure if use_secure else None,
        secure_evaluation=secure if secure_evaluation else None,
        first_round=first_round,
        on_started=resume.on_started if resume is not None else None,
        on_evaluated=resume.on_evaluated if resume is not None else None,
        target_bound=target_bound,
    )
    result.rounds, result.validation = outcome.rounds, outcome.validation
    result.failures, result.secure_rounds = outcome.failures, outcome.secure_rounds
    if resume is not None and first_round > 1:
        result.rounds = [*resume.completed, *result.rounds]
        result.validation = [*resume.completed_validation, *result.validation]
        lost = first_round - 1 - len(resume.completed)
        result.note = f"resumed after round {len(resume.completed)}" + (
            f"; {lost} interrupted round(s) not repeated (nodes refuse a replayed round)" if lost else ""
        )
    result.choose_best(per_node=False)
    _record_traffic(result, clients, before)
    result.wall_seconds = time.perf_counter() - start
    return result


def central_pool(
    clients: Sequence[NodeClient],
    task: TaskSpec,
    schema: Schema,
    *,
    run_id: str,
    purpose: str,
    on_round: RoundCallback | None = None,
    central_dp: tuple[float, float, float] | None = None,
) -> TopologyResult:
    """Pool the exported rows of every node that allows it and train one model.

    With `central_dp = (epsilon, delta, clip)` the coordinator, trusted with the
    rows, trains with DP-SGD so that the model is (epsilon, delta)-DP: central DP,
    labelled as such in the report.
    """
    start = time.perf_counter()
    before = _traffic_snapshot(clients)
    result = TopologyResult(name="central-pool" + (" (central DP)" if central_dp else ""), kind="central-pool")
    export_run = negotiate(clients, RunContext(run_id, purpose), task, release="raw")
    result.refusals = export_run.refusals
    result.participants = [c.node_id for c in export_run.accepted]
    if not export_run.accepted:
        result.started, result.note = False, "not started: no node allows raw export"
        return result
    tables = parallel(export_run.accepted, lambda c: c.export(RunContext(run_id, purpose), task))
    pooled: list[pa.Table] = []
    for node_id, table in tables.items():
        if isinstance(table, FederationError):
            result.failures.append({"round": 0, "node": node_id, "rpc": "Export", "error": table.public})
        else:
            pooled.append(table)
    if not pooled:
        result.started, result.note = False, "not started: every export failed"
        return result
    frame = pa.concat_tables(pooled, promote_options="default").to_pandas()
    if task.scaling is None:
        raise InvalidRequest("the central pool needs global feature scaling")
    if VALIDATION_COLUMN in frame:  # the rows each node holds out: the pool validates on the same ones, through the nodes
        frame = frame[~frame[VALIDATION_COLUMN].astype(bool)]
    x = standardise(encode(frame, schema, task.features), task.scaling.mean, task.scaling.std)
    y = targets(frame, task.target, task.objective)
    if task.target_scaling is not None:  # the pool learns the standardised target, as the nodes do
        y = ((y - task.target_scaling[0]) / task.target_scaling[1]).astype(y.dtype)
    eval_id = f"{run_id}-eval"
    # per-node metrics of a model are individual results: nodes release them at `update` or above
    evaluation = negotiate(clients, RunContext(eval_id, purpose), task, release="update")
    for node_id, reasons in evaluation.refusals.items():
        result.refusals.setdefault(node_id, reasons)
    model = build_model(task.model, x.shape[1], seed=task.seed)
    noise = None
    if central_dp is not None:
        epsilon, delta, clip = central_dp
        rate, per_round = sampling(len(y), task.batch_size, task.local_epochs)
        noise = noise_for_budget([], epsilon=epsilon, delta=delta, sample_rate=rate, steps=per_round * task.rounds)
        if noise is None:
            result.started, result.note = False, f"not started: epsilon {epsilon:g} cannot cover {task.rounds} rounds"
            return result
        result.privacy = {"noise_multiplier": noise, "clip": clip, "epsilon": epsilon, "central": 1.0}
    for round_ in range(1, task.rounds + 1):
        seed = task.seed * 7919 + round_
        if noise is not None and central_dp is not None:
            train_dp_sgd(
                model,
                x,
                y,
                epochs=task.local_epochs,
                batch_size=task.batch_size,
                learning_rate=task.learning_rate,
                noise_multiplier=noise,
                clip=central_dp[2],
                objective=task.objective,
            )
        else:
            train(
                model,
                x,
                y,
                epochs=task.local_epochs,
                batch_size=task.batch_size,
                learning_rate=task.learning_rate,
                seed=seed,
                objective=task.objective,
                weight_decay=task.weight_decay,
            )
        sums, held_out = evaluate_everywhere(
            evaluation.accepted, RunContext(eval_id, purpose, round_), task, get_arrays(model), result.failures
        )
        result.rounds.append(sums)
        result.validation.append(held_out)
        if on_round is not None:
            on_round(round_, sums)
    result.choose_best(per_node=False)
    _record_traffic(result, clients, before)
    result.wall_seconds = time.perf_counter() - start
    return result


def local_only(
    clients: Sequence[NodeClient], task: TaskSpec, *, run_id: str, purpose: str, on_round: RoundCallback | None = None
) -> TopologyResult:
    """Each node trains on its own data; the coordinator receives only metric sums."""
    start = time.perf_counter()
    before = _traffic_snapshot(clients)
    result = TopologyResult(name="local-only", kind="local-only")
    negotiation = negotiate(clients, RunContext(run_id, purpose), task, release="update")  # per-node metrics
    result.refusals, result.participants = negotiation.refusals, [c.node_id for c in negotiation.accepted]
    if not negotiation.accepted:
        result.started, result.note = False, "not started: no node accepted"
        return result
    per_node = parallel(negotiation.accepted, lambda c: list(c.train_local(RunContext(run_id, purpose), task)))
    rounds: list[dict[str, EvalSums]] = [{} for _ in range(task.rounds)]
    validation: list[dict[str, EvalSums]] = [{} for _ in range(task.rounds)]
    for node_id, outcome in per_node.items():
        if isinstance(outcome, FederationError):
            result.failures.append({"round": 0, "node": node_id, "rpc": "TrainLocal", "error": outcome.public})
            continue
        for round_, scores, _ in outcome:
            if 1 <= round_ <= task.rounds:
                rounds[round_ - 1][node_id] = scores.test
                if scores.validation is not None:
                    validation[round_ - 1][node_id] = scores.validation
    result.rounds, result.validation = rounds, validation
    result.choose_best(per_node=True)
    if on_round is not None:
        for index, round_sums in enumerate(rounds, start=1):
            on_round(index, round_sums)
    _record_traffic(result, clients, before)
    result.wall_seconds = time.perf_counter() - start
    return result


PERSONALISED = "federated (personalised)"
KEPT_LOCAL_ONLY = "reported with the local-only topology's model (same seed and split): keeping local-only is local-only"


def adopt_local_only(personal: TopologyResult, alone: TopologyResult) -> None:
    """A party whose choice is local-only is reported with the local-only topology's own model.

    Its personalisation validated a local model like local-only's; reporting
    local-only's figures makes "kept local-only" mean exactly that, instead of
    a second training of the same recipe whose noise would read as a gain or
    a loss.
    """
    own = alone.final()
    for node, choice in personal.choices.items():
        if choice.get("method") == "local" and node in own and personal.rounds and node in personal.rounds[0]:
            personal.rounds[0][node] = own[node]
            choice["reported"] = KEPT_LOCAL_ONLY


def personalised(
    clients: Sequence[NodeClient],
    task: TaskSpec,
    global_model: NamedArrays,
    *,
    run_id: str,
    purpose: str,
    methods: dict[str, dict[str, ParamValue]],
    criterion: str = "loss",
) -> TopologyResult:
    """Each node personalises the federated model on its own rows and keeps local-only unless a candidate wins clearly.

    The global part is the federated run's (Flower's strategy, secure
    aggregation and DP as configured); only each node's choice and its test
    sums leave, released like local-only results.
    """
    start = time.perf_counter()
    before = _traffic_snapshot(clients)
    result = TopologyResult(name=PERSONALISED, kind="personalised")
    negotiation = negotiate(clients, RunContext(run_id, purpose), task, release="update")  # per-node results
    result.refusals, result.participants = negotiation.refusals, [c.node_id for c in negotiation.accepted]
    if not negotiation.accepted:
        result.started, result.note = False, "not started: no node accepted"
        return result
    context = RunContext(run_id, purpose, 1)
    answers = parallel(negotiation.accepted, lambda c: c.personalise(context, task, global_model, methods, criterion))
    sums: dict[str, EvalSums] = {}
    for node_id, answer in answers.items():
        if isinstance(answer, FederationError):
            result.failures.append({"round": 1, "node": node_id, "rpc": "Personalise", "error": answer.public})
            continue
        sums[node_id], result.choices[node_id] = answer[0].test, answer[1]
    result.rounds = [sums]
    _record_traffic(result, clients, before)
    result.wall_seconds = time.perf_counter() - start
    return result
