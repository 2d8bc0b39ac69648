"""The Flower apps: our node as a `ClientApp`, our coordinator as a `ServerApp`.

`client_app(plan)` and `server_app(job)` build them for the Simulation
Engine (`federation compare --engine flower-simulation`). `client` and
`server` are the same apps for `flwr run` on the Deployment Engine: the
ServerApp compares the experiment its run config names (`experiment`), and
each SuperNode serves the node its own `--node-config "manifest='PATH'
coordinator='NAME'"` names (`examples/flower_deployment`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from federation.errors import ConfigError
from federation.flower.channel import MessageRouter
from federation.flower.virtual_node import handle, plan_at, supernode_plan

Job = Callable[[MessageRouter, Context], None]


def client_app(plan: str | None = None) -> ClientApp:
    """A ClientApp serving the virtual nodes of the plan at `plan` (default: the run config's `plan`)."""
    app = ClientApp()

    @app.query()
    def query(message: Message, context: Context) -> Message:
        path = plan or context.run_config.get("plan")
        chosen = plan_at(path) if isinstance(path, str) else supernode_plan(dict(context.node_config))
        return handle(chosen, message, context)

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
    from federation.flower.plan import plan_for
    from federation.report.render import render

    experiment_path = context.run_config.get("experiment")
    if not isinstance(experiment_path, str):
        raise ConfigError("run config", ["`experiment` must name the experiment file (flwr run --run-config)"])
    experiment = load_experiment(Path(experiment_path))
    plan = plan_for(experiment.nodes, experiment.pki_dir, experiment.coordinator, where=experiment_path)
    flower_ids = identify(router, plan, timeout=experiment.timeout)
    comparison = compare_on_grid(router, experiment, plan, flower_ids)
    render(comparison.to_json(), comparison.run_dir)


client = client_app()
server = server_app(_deployment_job)
