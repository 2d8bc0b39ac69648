"""The Flower apps: our node as a `ClientApp`, our coordinator as a `ServerApp`.

`client_app(plan)` and `server_app(job)` build them for the Simulation
Engine (`federation compare --engine flower-simulation`). `client` and
`server` are the same apps for `flwr run` on the Deployment Engine; they read
their settings from the run config (`experiment`, `plan`) and each SuperNode
names its node with `--node-config "node='ID'"` (or takes its partition id's
place in the plan).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from federation.errors import ConfigError
from federation.flower.channel import MessageRouter
from federation.flower.virtual_node import handle, plan_at

Job = Callable[[MessageRouter, Context], None]


def client_app(plan: str | None = None) -> ClientApp:
    """A ClientApp serving the virtual nodes of the plan at `plan` (default: the run config's `plan`)."""
    app = ClientApp()

    @app.query()
    def query(message: Message, context: Context) -> Message:
        path = plan or context.run_config.get("plan")
        if not isinstance(path, str):
            raise ConfigError("run config", ["`plan` names no plan of virtual nodes (federation flower plan EXPERIMENT)"])
        return handle(plan_at(path), message, context)

    return app


def server_app(job: Job) -> ServerApp:
    """A ServerApp that runs `job` with a router over Flower's grid."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        router = MessageRouter(grid)
        try:
            job(router, context)
        finally:
            router.close()

    return app


def _deployment_job(router: MessageRouter, context: Context) -> None:
    """`flwr run`: compare the experiment named in the run config over the SuperNodes, into its output."""
    from federation.experiments.config import load_experiment
    from federation.flower.engine import compare_on_grid, identify
    from federation.flower.plan import read_plan
    from federation.report.render import render

    experiment_path, plan_path = context.run_config.get("experiment"), context.run_config.get("plan")
    if not isinstance(experiment_path, str) or not isinstance(plan_path, str):
        raise ConfigError("run config", ["`experiment` and `plan` must name the experiment file and its plan"])
    experiment = load_experiment(Path(experiment_path))
    plan = read_plan(Path(plan_path))
    flower_ids = identify(router, plan, timeout=experiment.timeout)
    comparison = compare_on_grid(router, experiment, plan, flower_ids)
    render(comparison.to_json(), comparison.run_dir)


client = client_app()
server = server_app(_deployment_job)
