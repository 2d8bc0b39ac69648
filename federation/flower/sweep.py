"""`federation sweep --engine flower-simulation`: every point of a sweep at once, on one Simulation Engine.

Each point gets virtual nodes of its own (its policy files, its own state
directories, so each what-if starts from an unspent privacy budget), all in
one plan; the ServerApp runs the points' comparisons in parallel threads, and
Ray's workers serve whichever node's message comes next. Finished points are
written at once and skipped on a resume, as on the gRPC engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from flwr.app import Context

from federation.errors import ConfigError, FederationError
from federation.experiments.compare import ProgressFactory
from federation.experiments.config import Experiment
from federation.experiments.sweep import (
    SweepPoint,
    Variation,
    combinations,
    experiment_for,
    finished_point,
    policy_for,
    record_point,
    write_policies,
)
from federation.flower.channel import MessageRouter
from federation.flower.engine import compare_on_grid, identify
from federation.flower.plan import PLAN_NAME, Plan, VirtualNode
from federation.flower.simulation import check_state_free, run_on_simulation


@dataclass
class _Pending:
    point: SweepPoint
    experiment: Experiment
    directory: Path
    indices: range  # its virtual nodes' places in the plan


def sweep_simulated(
    experiment: Experiment,
    variations: Sequence[Variation],
    out_dir: Path,
    *,
    progress: ProgressFactory | None = None,
    on_point: Callable[[SweepPoint], None] | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
) -> list[SweepPoint]:
    """Run every combination not finished yet, all at once; returns every point in order."""
    manifests = {node_id: manifest for node_id, _, manifest in experiment.nodes if manifest is not None}
    if len(manifests) != len(experiment.nodes):
        raise ConfigError(str(experiment.path), ["a sweep starts the nodes itself: every node needs a manifest"])
    points: dict[int, SweepPoint] = {}
    pending: list[_Pending] = []
    nodes: list[VirtualNode] = []
    for index, combination in enumerate(combinations(variations)):
        point_dir = out_dir / f"point-{index:03d}"
        finished = finished_point(point_dir, index, combination)
        if finished is not None:
            points[index] = finished
            continue
        policies = write_policies(experiment, {n: policy_for(experiment, n, combination) for n in manifests}, point_dir)
        first = len(nodes)
        for node_id, manifest in manifests.items():
            state = point_dir / "state" / node_id
            nodes.append(VirtualNode(node_id, str(manifest), str(experiment.pki_dir), str(policies[node_id]), str(state)))
        point = SweepPoint(index, combination, None)
        pending.append(_Pending(point, experiment_for(experiment, combination), point_dir, range(first, len(nodes))))
    if pending:
        plan = Plan(experiment.coordinator, str(experiment.pki_dir), tuple(nodes))
        check_state_free(plan, str(out_dir))

        def job(router: MessageRouter, context: Context) -> None:
            flower_ids = identify(router, plan, timeout=experiment.timeout)

            def run(item: _Pending) -> SweepPoint:
                try:
                    comparison = compare_on_grid(
                        router,
                        item.experiment,
                        plan,
                        flower_ids,
                        indices=item.indices,
                        progress=progress,
                        output_dir=item.directory,
                    )
                    item.point.results = comparison.to_json()
                except FederationError as error:
                    item.point.error = error.public  # recorded, and the other points go on
                record_point(item.directory, item.point)
                if on_point is not None:
                    on_point(item.point)
                return item.point

            with ThreadPoolExecutor(max_workers=len(pending)) as pool:
                for point in pool.map(run, pending):
                    points[point.index] = point

        run_on_simulation(plan.write(out_dir / PLAN_NAME), len(plan.nodes), job, workers=workers, ray_address=ray_address)
    missing = [p.point.index for p in pending if p.point.index not in points]
    if missing:
        raise ConfigError(str(out_dir), [f"the simulation ended before points {missing} did (see the log above)"])
    return [points[i] for i in sorted(points)]
