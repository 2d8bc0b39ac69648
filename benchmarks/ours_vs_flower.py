"""Our federated run against Flower's own simulation of the same task, side by side in one run.

The example city (six districts), the same task (model, features, rounds,
local epochs, batch size, learning rate, seeds, global feature scaling), the
same harmonised training and test rows on each district:

  ours     our node processes (spread over the cores, as `federation demo`
           starts them) and `federation compare` with the federated topology
           and FedAvg, secure aggregation on, every round's model evaluated on
           every node;
  flower   Flower's Simulation Engine (Ray, one worker per core) with a plain
           Flower ClientApp that trains and evaluates the same model on the same
           rows, and Flower's FedAvg; no policy, audit, ledger or masking.

It prints the seconds per round (rounds 2 to N, so start-up and the first
load are apart) and of the whole run from nothing (node start-up or Ray's
start included), and our / Flower's ratio of each.

    python benchmarks/ours_vs_flower.py [--rounds 20] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from federation.coordinator.negotiate import combine_stats
from federation.experiments.compare import compare
from federation.experiments.config import load_experiment
from federation.experiments.launcher import prepare_identities, spread, start_nodes, stop_nodes
from federation.models.evaluation import EvalSums
from federation.node.handlers import NodeHandlers
from federation.node.runtime import NodeRuntime
from federation.task import RunContext, TaskSpec

ROOT = Path(__file__).resolve().parent.parent
CITY = ROOT / "examples" / "pollution_enforcement"


def ensure_data() -> None:
    if not (CITY / "data" / ".generated").is_file():
        sys.path.insert(0, str(CITY))
        from generate import generate_city  # type: ignore[import-not-found]

        generate_city(CITY / "data", seed=7)
        (CITY / "data" / ".generated").touch()


def scaled_task(manifests: dict[str, Path], task: TaskSpec, coordinator: str, purpose: str, state: Path) -> TaskSpec:
    """The task with the global feature scaling our coordinator computes from every node's Stats."""
    stats = []
    for node_id, manifest in manifests.items():
        handlers = NodeHandlers(NodeRuntime.load(manifest, state_dir=state / node_id))
        run = RunContext("benchmark-scaling", purpose)
        handlers.propose(coordinator, run, task, cohort_size=len(manifests), release="stats")
        stats.append(handlers.stats(coordinator, run, task))
    return task.with_scaling(combine_stats(stats))


def ours(rounds: int) -> dict[str, Any]:
    experiment = load_experiment(CITY / "experiment.toml")
    experiment.topologies = ("federated",)
    experiment.strategies = ("fedavg",)
    experiment.compare_naive = False
    experiment.task = dataclasses.replace(experiment.task, rounds=rounds)
    manifests = {n: m for n, _, m in experiment.nodes if m is not None}
    prepare_identities(experiment.pki_dir, manifests, experiment.coordinator)
    marks: list[float] = []

    def progress(label: str, total: int) -> Callable[[int, dict[str, EvalSums]], None]:
        return lambda round_, sums: marks.append(time.monotonic())

    began = time.monotonic()
    with tempfile.TemporaryDirectory() as work:
        nodes = start_nodes(manifests, Path(work), pki_dir=experiment.pki_dir, per_process=spread(len(manifests)))
        try:
            comparison = compare(experiment, {n.node_id: n.address for n in nodes}, progress=progress, output_dir=Path(work))
        finally:
            stop_nodes(nodes)
    result = comparison.results[0]
    return {
        "round_seconds": [round(b - a, 3) for a, b in itertools.pairwise(marks)],
        "whole_seconds": round(time.monotonic() - began, 1),
        "secure_aggregation": result.secure_aggregation,
        "auc": round(result.overall("auc"), 4),
    }


def flower(rounds: int, workers: int) -> dict[str, Any]:
    """Flower's own simulation of the task: a ClientApp of Flower's usual shape over the same rows."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    from federation.coordinator.grid import from_array_record, to_array_record
    from federation.data.encoding import encoded_columns
    from federation.models.registry import build_model
    from federation.models.training import evaluate, get_arrays, set_arrays, train
    from federation.node.training import local_seed, prepare, validation_split

    experiment = load_experiment(CITY / "experiment.toml")
    manifests = [str(m) for _, _, m in experiment.nodes if m is not None]
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as state:
        task = dataclasses.replace(
            scaled_task(dict(zip([n for n, _, _ in experiment.nodes], map(Path, manifests), strict=True)), experiment.task,
                        experiment.coordinator, experiment.purpose, Path(state)),
            rounds=rounds,
        )  # fmt: skip
        loaded: dict[int, NodeRuntime] = {}

        def runtime(context: Context) -> NodeRuntime:
            partition = int(context.node_config["partition-id"])
            if partition not in loaded:
                loaded[partition] = NodeRuntime.load(Path(manifests[partition]), state_dir=Path(state) / str(partition))
            return loaded[partition]

        client = ClientApp()

        @client.train()
        def fit(message: Message, context: Context) -> Message:
            rt = runtime(context)
            train_rows, _ = rt.split_for("harmonised")
            fitting, _ = validation_split(train_rows, task, rt.node_id)
            x, y = prepare(rt.schema, task, fitting, reference=train_rows)
            model = build_model(task.model, x.shape[1], seed=task.seed)
            set_arrays(model, from_array_record(message.content["arrays"]))  # type: ignore[arg-type]
            round_ = int(message.content["config"]["server-round"])  # type: ignore[index, arg-type]
            loss = train(model, x, y, epochs=task.local_epochs, batch_size=task.batch_size, learning_rate=task.learning_rate,
                         seed=local_seed(task.seed, rt.node_id, round_), objective=task.objective)  # fmt: skip
            metrics = MetricRecord({"num-examples": len(y), "train-loss": loss})
            return Message(RecordDict({"arrays": to_array_record(get_arrays(model)), "metrics": metrics}), reply_to=message)

        @client.evaluate()
        def test(message: Message, context: Context) -> Message:
            rt = runtime(context)
            train_rows, test_rows = rt.split_for("harmonised")
            x, y = prepare(rt.schema, task, test_rows, reference=train_rows)
            model = build_model(task.model, x.shape[1], seed=task.seed)
            set_arrays(model, from_array_record(message.content["arrays"]))  # type: ignore[arg-type]
            sums = evaluate(model, x, y, objective=task.objective)
            metrics = MetricRecord({"num-examples": sums.count, "loss": sums.loss, "accuracy": sums.accuracy})
            return Message(RecordDict({"metrics": metrics}), reply_to=message)

        marks: list[float] = []
        server = ServerApp()

        @server.main()
        def main(grid: Grid, context: Context) -> None:
            schema = NodeRuntime.load(Path(manifests[0]), state_dir=Path(state) / "schema").schema
            initial = build_model(task.model, len(encoded_columns(schema, task.features)), seed=task.seed)
            n = len(manifests)
            strategy = FedAvg(
                fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=n, min_evaluate_nodes=n, min_available_nodes=n
            )

            def stamp(round_: int, arrays: ArrayRecord) -> MetricRecord | None:
                marks.append(time.monotonic())
                return None

            strategy.start(grid, to_array_record(get_arrays(initial)), num_rounds=rounds, evaluate_fn=stamp)

        backend = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}, "init_args": {"num_cpus": workers, "logging_level": 40}}
        run_simulation(server_app=server, client_app=client, num_supernodes=len(manifests), backend_config=backend)  # type: ignore[arg-type]
    return {
        "round_seconds": [round(b - a, 3) for a, b in itertools.pairwise(marks[1:])],  # marks[0]: before round 1
        "whole_seconds": round(time.monotonic() - began, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    ensure_data()
    mine, theirs = ours(args.rounds), flower(args.rounds, args.workers)
    later_ours, later_theirs = mine["round_seconds"], theirs["round_seconds"]  # rounds 2 to N
    summary = {
        "ours": mine,
        "flower": theirs,
        "round_ratio": round(statistics.mean(later_ours) / statistics.mean(later_theirs), 2),
        "whole_ratio": round(mine["whole_seconds"] / theirs["whole_seconds"], 2),
    }
    per_round = f"rounds 2-{args.rounds}"
    print(f"ours   (secure aggregation {mine['secure_aggregation']}): {per_round} {statistics.mean(later_ours):.3f} s each, "
          f"whole run {mine['whole_seconds']} s, AUC {mine['auc']}")  # fmt: skip
    print(f"flower (plain FedAvg): {per_round} {statistics.mean(later_theirs):.3f} s each, whole run {theirs['whole_seconds']} s")
    print(f"ours / flower: per round {summary['round_ratio']} (goal <= 1.0), whole run {summary['whole_ratio']} (goal <= 0.7)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
