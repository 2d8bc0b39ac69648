"""`federation compare` and `federation run`: connect, scale, run topologies, write results.

Global feature scaling comes first, from every node's `Stats` (sums only),
so all topologies see identically scaled inputs.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from federation.coordinator import waiting
from federation.coordinator.checkpoint import load_checkpoint
from federation.coordinator.grid import SecureSettings
from federation.coordinator.negotiate import combine_histograms, histogram_quantile
from federation.data.schema import Schema
from federation.errors import ConfigError, FederationError, NodeUnavailable
from federation.experiments import topologies
from federation.experiments.cohort import Connector, connect, describe_all, weight_cap
from federation.experiments.config import Experiment
from federation.experiments.metrics import TopologyResult
from federation.experiments.progress import RunProgress
from federation.experiments.scaling import global_scaling
from federation.models.evaluation import EvalSums
from federation.models.training import NamedArrays
from federation.privacy.accounting import MechanismStep, epsilon_of, noise_for_budget
from federation.task import PrivacySpec, RecordPrivacy, TaskSpec

log = logging.getLogger(__name__)
NAIVE_LABEL = "federated (naive reading)"
ProgressFactory = Callable[[str, int], Callable[[int, dict[str, EvalSums]], None]]


@dataclass
class Comparison:
    experiment: str
    metric: str
    run_dir: Path
    nodes: list[str]
    unreachable: dict[str, str] = field(default_factory=dict)
    scaling_refusals: dict[str, list[str]] = field(default_factory=dict)
    results: list[TopologyResult] = field(default_factory=list)
    privacy_spent: dict[str, dict[str, float | None]] = field(default_factory=dict)
    quality: dict[str, dict[str, Any]] = field(default_factory=dict)
    statistics: str = ""
    quantiles: dict[str, dict[str, float]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)  # records per node as it describes them (rounded)

    def by_kind(self, kind: str) -> TopologyResult | None:
        return next((r for r in self.results if r.kind == kind and r.started), None)

    def to_json(self) -> dict[str, Any]:
        local = self.by_kind("local-only")
        gains: dict[str, dict[str, float | None]] = {}
        for result in self.results:
            if local is None or result is local or not result.started:
                continue
            gains[result.name] = {
                node: _clean(result.node_metric(node, self.metric) - local.node_metric(node, self.metric)) for node in self.nodes
            }
        return {
            "experiment": self.experiment,
            "metric": self.metric,
            "nodes": self.nodes,
            "unreachable": self.unreachable,
            "scaling_refusals": self.scaling_refusals,
            "topologies": [r.to_json(self.metric) for r in self.results],
            "gain_vs_local_only": gains,
            "privacy_spent": self.privacy_spent,
            "quality": self.quality,
            "statistics": self.statistics,
            "feature_quantiles": self.quantiles,
            "approx_records": self.sizes,
        }


def _clean(value: float) -> float | None:
    return None if value != value else round(value, 6)


def compare(
    experiment: Experiment,
    addresses: dict[str, str],
    *,
    topologies_to_run: Sequence[str] | None = None,
    progress: ProgressFactory | None = None,
    output_dir: Path | None = None,
    resume: Path | None = None,
    run_dir: Path | None = None,
    connector: Connector | None = None,
    on_wait: waiting.Reporter | None = None,
) -> Comparison:
    """Run the topologies and write the results into `run_dir` (default: a new stamped folder of the output).

    `resume` continues an interrupted run in its directory. `connector`
    gives the clients instead of gRPC channels to `addresses` (Flower's engines).
    `on_wait(answered, asked)` hears every node's answer while a phase waits.
    """
    with waiting.reporting(on_wait):
        return _compare(experiment, addresses, topologies_to_run, progress, output_dir, resume, run_dir, connector)


def _compare(
    experiment: Experiment,
    addresses: dict[str, str],
    topologies_to_run: Sequence[str] | None,
    progress: ProgressFactory | None,
    output_dir: Path | None,
    resume: Path | None,
    run_dir: Path | None,
    connector: Connector | None,
) -> Comparison:
    if resume is not None:
        run_dir = resume
        state = RunProgress.resume(run_dir, experiment.path)
    else:
        if run_dir is None:
            run_dir = (output_dir or experiment.output_dir) / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            stamp = run_dir.name
        else:  # a run inside a larger one (a seed of `--seeds`): both names, so its run ids are new to the nodes
            stamp = f"{run_dir.parent.name}-{run_dir.name}"
        run_dir.mkdir(parents=True, exist_ok=True)
        state = RunProgress.new(run_dir, experiment.path, experiment.name, stamp)
    stamp = state.stamp
    if connector is not None:
        clients = connector(experiment, run_dir)
    else:
        clients = connect(experiment, addresses, timeout=experiment.timeout, run_dir=run_dir)
    try:
        comparison = Comparison(experiment.name, experiment.metric, run_dir, [c.node_id for c in clients])
        reachable, comparison.unreachable, descriptions = describe_all(
            clients, experiment.purpose, f"{experiment.name}-{stamp}-describe"
        )
        comparison.sizes = {d.node_id: d.approx_records for d in descriptions}
        if not descriptions:
            raise NodeUnavailable("no node answered: " + "; ".join(f"{n}: {e}" for n, e in comparison.unreachable.items()))
        schema: Schema = topologies.schema_from_description(descriptions[0], experiment.task.target)
        bound = _target_bound(schema, experiment.task)
        secure = SecureSettings(
            clip=experiment.secure.clip,
            max_weight=weight_cap(descriptions),
            threshold=experiment.secure.threshold,
            degree=experiment.secure.degree,
            stop_on_abort=experiment.secure.on_abort == "stop",
        )
        comparison.quality = {
            d.node_id: {"total": d.quality.total, "kept": d.quality.kept, "excluded": dict(d.quality.excluded)}
            for d in descriptions
            if d.quality is not None
        }
        task, comparison.scaling_refusals, stats = global_scaling(
            reachable,
            experiment.task,
            run_id=f"{experiment.name}-{stamp}-stats",
            purpose=experiment.purpose,
            secure=secure,
            secure_mode=experiment.secure.mode,
            schema=schema,
        )
        comparison.statistics = (
            "summed securely" if len(stats) == 1 and len(reachable) > 1 else "per node, summed by the coordinator"
        )
        comparison.quantiles = {
            column: {f"p{round(q * 100)}": round(histogram_quantile(edges, counts, q), 4) for q in (0.25, 0.5, 0.75)}
            for column, (edges, counts) in combine_histograms(stats).items()
        }
        wanted = topologies_to_run or experiment.topologies
        fed_task, central_dp = task, None
        target = experiment.privacy
        if math.isfinite(target.epsilon):  # the analyst's target for the model, federated and pooled alike
            if target.level == "record":  # each node runs DP-SGD to the target: the central pool's privacy unit
                fed_task = replace(task, record_privacy=RecordPrivacy(target.epsilon, target.delta, target.clip))
            else:
                sigma = noise_for_budget([], epsilon=target.epsilon, delta=target.delta, sample_rate=1.0, steps=task.rounds)
                if sigma is None:
                    problem = f"privacy.epsilon: {target.epsilon:g} cannot cover {task.rounds} rounds"
                    raise ConfigError(str(experiment.path), [problem])
                fed_task = replace(task, privacy=PrivacySpec(sigma, target.clip))
            central_dp = (target.epsilon, target.delta, target.clip)

        def on_round(label: str) -> Callable[[int, dict[str, EvalSums]], None] | None:
            return progress(label, task.rounds) if progress is not None else None

        def federated(
            label: str, task: TaskSpec, run_id: str, strategy: str, folder: str, name: str | None = None
        ) -> TopologyResult:
            """A federated topology, resumed where it stopped; every completed round is recorded in the progress."""
            done = state.result(label)
            if done is not None:
                return done
            checkpoints = run_dir / "checkpoints" / folder
            result = topologies.federated(
                reachable,
                task,
                run_id=run_id,
                purpose=experiment.purpose,
                strategy=strategy,
                proximal_mu=experiment.proximal_mu,
                checkpoint_dir=checkpoints,
                on_round=on_round(label),
                secure_mode=experiment.secure.mode,
                secure=secure,
                label=name,
                resume=_resume_point(state, label, checkpoints),
                target_bound=bound,
            )
            state.finish(label, result)
            return result

        for kind in wanted:
            run_id = f"{experiment.name}-{stamp}-{kind}"
            if kind == "federated":
                for strategy in experiment.strategies:
                    comparison.results.append(
                        federated(f"federated ({strategy})", fed_task, f"{run_id}-{strategy}", strategy, strategy)
                    )
            elif kind == "personalised":
                base = next((r for r in comparison.results if r.kind == "federated" and r.started), None)
                if base is None:
                    continue  # personalisation starts from a federated model
                model = _reported_model(base, run_dir / "checkpoints" / experiment.strategies[0])
                comparison.results.append(
                    state.result(topologies.PERSONALISED)
                    or _once(
                        state,
                        topologies.PERSONALISED,
                        lambda suffix, run_id=run_id, model=model: topologies.personalised(  # type: ignore[misc]
                            reachable,
                            fed_task,
                            model,
                            run_id=run_id + suffix,
                            purpose=experiment.purpose,
                            methods={"local": {"epochs": task.rounds * task.local_epochs}, **experiment.personalised_methods},
                            criterion=experiment.personalised_criterion,
                        ),
                    )
                )
            elif kind == "central-pool":
                comparison.results.append(
                    state.result("central-pool")
                    or _once(
                        state,
                        "central-pool",
                        lambda suffix, run_id=run_id: topologies.central_pool(  # type: ignore[misc]
                            reachable,
                            task,
                            schema,
                            run_id=run_id + suffix,
                            purpose=experiment.purpose,
                            on_round=on_round("central-pool"),
                            central_dp=central_dp,
                        ),
                    )
                )
            else:
                comparison.results.append(
                    state.result("local-only")
                    or _once(
                        state,
                        "local-only",
                        lambda suffix, run_id=run_id: topologies.local_only(  # type: ignore[misc]
                            reachable, task, run_id=run_id + suffix, purpose=experiment.purpose, on_round=on_round("local-only")
                        ),
                    )
                )
        personal = next((r for r in comparison.results if r.kind == "personalised" and r.started), None)
        alone = next((r for r in comparison.results if r.kind == "local-only" and r.started), None)
        if personal is not None and alone is not None:
            topologies.adopt_local_only(personal, alone)
        if experiment.compare_naive and (topologies_to_run is None or "federated" in wanted):
            # The same federated training on the same records read naively: what harmonisation buys.
            naive, _, _ = global_scaling(
                reachable,
                replace(experiment.task, view="naive"),
                run_id=f"{experiment.name}-{stamp}-naive-stats",
                purpose=experiment.purpose,
            )
            naive = replace(naive, privacy=fed_task.privacy, record_privacy=fed_task.record_privacy)
            strategy = experiment.strategies[0]
            naive_id = f"{experiment.name}-{stamp}-naive-{strategy}"
            comparison.results.append(federated(NAIVE_LABEL, naive, naive_id, strategy, "naive", NAIVE_LABEL))
        for result in comparison.results:  # the coordinator's own accounting of the run's target, next to the nodes' ledgers
            if result.kind == "federated" and "noise_multiplier" in result.privacy and result.rounds:
                step = MechanismStep(result.privacy["noise_multiplier"], 1.0, len(result.rounds))
                result.privacy["epsilon"] = round(epsilon_of([step], delta=target.delta), 4)
        _, _, after = describe_all(reachable, experiment.purpose, f"{experiment.name}-{stamp}-after")
        comparison.privacy_spent = {
            d.node_id: {"epsilon_spent": round(d.epsilon_spent, 6), "epsilon_budget": d.epsilon_budget}
            for d in after
            if d.epsilon_budget is not None
        }
        write_results(comparison)
        return comparison
    finally:
        for client in clients:
            client.close()


def _reported_model(result: TopologyResult, checkpoints: Path) -> NamedArrays:
    """The federated model a topology reported (its best round on validation), from that round's checkpoint."""
    best = max(result.chosen.values(), default=len(result.rounds))
    path = checkpoints / f"round-{best:04d}.npz"
    if not path.is_file():
        raise ConfigError(str(path), [f"{result.name}: the checkpoint of round {best} is missing, cannot personalise"])
    return load_checkpoint(path)


def _target_bound(schema: Schema, task: TaskSpec) -> float | None:
    """The public bound on |target| a regression's secure evaluation sums with (None: binary, or no bound declared)."""
    from federation.node.training import target_bound

    try:
        return target_bound(schema, task)
    except FederationError:
        return None


def _resume_point(state: RunProgress, label: str, checkpoints: Path) -> topologies.Resume:
    """Where a federated topology starts: after its last started round, from its last checkpoint (round 1 if new)."""
    rounds = state.rounds(label)
    model = None
    if rounds.completed:
        path = checkpoints / f"round-{rounds.completed:04d}.npz"
        if not path.is_file():
            raise ConfigError(str(path), [f"{label}: the checkpoint of round {rounds.completed} is missing, cannot resume"])
        model = load_checkpoint(path)
    completed, validation = state.completed_rounds(label)
    return topologies.Resume(
        rounds.started + 1,
        model,
        completed,
        validation,
        lambda round_: state.round_started(label, round_),
        lambda round_, sums, held_out: state.round_completed(label, round_, sums, held_out),
    )


def _once(state: RunProgress, label: str, run: Callable[[str], TopologyResult]) -> TopologyResult:
    """A topology that is not resumable round by round: an interrupted one runs again under a new run id.

    (Its evaluation rounds were used up on the nodes; a new id makes that explicit.)
    """
    attempt = state.attempt(label)
    result = run(f"-retry{attempt}" if attempt else "")
    if attempt:
        result.note = (result.note + "; " if result.note else "") + f"run again after {attempt} interrupted attempt(s)"
    state.finish(label, result)
    return result


def write_results(comparison: Comparison) -> None:
    """results.json, and metrics.csv with one row per topology, round and node."""
    data = comparison.to_json()
    (comparison.run_dir / "results.json").write_text(json.dumps(data, indent=2))
    with (comparison.run_dir / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["topology", "round", "node", "auc", "accuracy", "loss", "test_records"])
        for result in comparison.results:
            for index, round_sums in enumerate(result.rounds, start=1):
                for node, sums in sorted(round_sums.items()):
                    writer.writerow(
                        [result.name, index, node, _clean(sums.auc), _clean(sums.accuracy), _clean(sums.loss), sums.count]
                    )
