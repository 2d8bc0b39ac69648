"""`--engine flower-simulation`: every party a virtual node on Flower's Simulation Engine (Ray).

The coordinator's code runs in a ServerApp on the engine's grid; each
virtual node runs our node code in a ClientApp on Ray's workers, one CPU
each, on this machine or, with `ray_address`, on a Ray cluster (whose
workers must see the same files: plan, manifests, data, PKI, state).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flwr.app import Context

from federation.coordinator.waiting import Reporter
from federation.errors import ConfigError
from federation.experiments.compare import Comparison, ProgressFactory
from federation.experiments.config import Experiment
from federation.flower.apps import Job, client_app, server_app
from federation.flower.channel import MessageRouter
from federation.flower.plan import PLAN_NAME, Plan, plan_for
from federation.node.state_lock import StateLock

log = logging.getLogger(__name__)
ENGINE = "flower-simulation"
INSTALL = "pip install 'flwr[simulation]==1.42.0' (in a checkout: pip install -e '.[simulation]')"


def require_simulation() -> None:
    """A clear error, with the install command, when Flower's simulation extra (Ray) is missing."""
    if importlib.util.find_spec("ray") is None:
        raise ConfigError(f"--engine {ENGINE}", [f"Flower's Simulation Engine needs Ray, which is not installed: {INSTALL}"])


def check_state_free(plan: Plan, where: str) -> None:
    """Refuse at once a plan whose node state directory a running node holds (instead of waiting on its lock)."""
    from federation.node.manifest import load_manifest

    busy = []
    for node in plan.nodes:
        state = Path(node.state_dir) if node.state_dir else load_manifest(Path(node.manifest)).state_dir
        try:
            StateLock.acquire(state).release()
        except ConfigError as error:
            busy.append(f"node {node.node_id!r}: {error.problems[0]}")
    if busy:
        raise ConfigError(where, busy)


def run_on_simulation(
    plan_path: Path, nodes: int, job: Job, *, workers: int | None = None, ray_address: str | None = None
) -> None:
    """Run `job` in a ServerApp over `nodes` virtual nodes serving the plan at `plan_path`."""
    require_simulation()
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # no events sent to Flower's servers
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # CPU workers: Ray's future default, without its warning
    from flwr.simulation import run_simulation

    init_args: dict[str, Any] = {"address": ray_address} if ray_address else {"num_cpus": workers or os.cpu_count() or 1}
    init_args.update({"logging_level": logging.ERROR, "log_to_driver": False})
    backend = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}, "init_args": init_args}
    run_simulation(
        server_app=server_app(job),
        client_app=client_app(str(plan_path)),
        num_supernodes=nodes,
        backend_config=backend,
    )


def compare_simulated(
    experiment: Experiment,
    *,
    topologies_to_run: Sequence[str] | None = None,
    progress: ProgressFactory | None = None,
    output_dir: Path | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    on_wait: Reporter | None = None,
) -> Comparison:
    """`compare` with every node of the experiment a virtual node on the Simulation Engine."""
    from federation.experiments.launcher import prepare_identities
    from federation.flower.engine import compare_on_grid, identify

    require_simulation()
    run_dir = (output_dir or experiment.output_dir) / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    plan = plan_for(experiment.nodes, experiment.pki_dir, experiment.coordinator, where=str(experiment.path))
    check_state_free(plan, str(experiment.path))
    prepare_identities(experiment.pki_dir, {n.node_id: Path(n.manifest) for n in plan.nodes}, experiment.coordinator)
    plan_path = plan.write(run_dir / PLAN_NAME)
    done: list[Comparison] = []

    def job(router: MessageRouter, context: Context) -> None:
        flower_ids = identify(router, plan, timeout=experiment.timeout)
        done.append(
            compare_on_grid(
                router,
                experiment,
                plan,
                flower_ids,
                topologies_to_run=topologies_to_run,
                progress=progress,
                run_dir=run_dir,
                on_wait=on_wait,
            )
        )

    run_on_simulation(plan_path, len(plan.nodes), job, workers=workers, ray_address=ray_address)
    if not done:
        raise ConfigError(str(experiment.path), ["the simulation ended before the comparison did (see the log above)"])
    return done[0]
