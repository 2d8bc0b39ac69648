"""`federation nodes up` and `nodes down`: start an experiment's nodes once, leave them running, stop them later."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from federation.cli_admin import serving_bar
from federation.errors import ConfigError

nodes_app = typer.Typer(no_args_is_help=True, help="Start an experiment's nodes and leave them running (a roster).")
console = Console()


def experiment_parts(path: Path) -> tuple[list[tuple[str, str | None, Path | None]], Path, str, Path]:
    """(nodes, PKI directory, coordinator, output directory) of an experiment file of any kind."""
    from federation.experiments.vertical_config import experiment_kind

    kind = experiment_kind(path)
    if kind == "vertical":
        from federation.experiments.vertical_config import load_vertical_experiment

        loaded = load_vertical_experiment(path)
        return loaded.nodes, loaded.pki_dir, loaded.coordinator, loaded.output_dir
    if kind == "psi":
        from federation.experiments.psi_config import load_psi_experiment

        psi = load_psi_experiment(path)
        return psi.nodes, psi.pki_dir, psi.coordinator, psi.output_dir
    from federation.experiments.config import load_experiment

    horizontal = load_experiment(path)
    return horizontal.nodes, horizontal.pki_dir, horizontal.coordinator, horizontal.output_dir


@nodes_app.command("up")
def nodes_up(
    experiment: Annotated[Path, typer.Argument(help="The experiment file whose nodes to start (they need manifests).")],
    per_process: Annotated[
        int | None, typer.Option(help="Nodes hosted in each process (default: spread over the machine's cores).", min=1)
    ] = None,
    roster: Annotated[Path | None, typer.Option(help="Where to write the roster (default: OUTPUT/nodes/roster.json).")] = None,
    startup_timeout: Annotated[float | None, typer.Option(help="Seconds to wait for every node to serve.")] = None,
) -> None:
    """Start the experiment's nodes, write their roster, and return; `compare --roster` and `nodes down` read it."""
    from federation.experiments.launcher import prepare_identities, spread, start_nodes
    from federation.experiments.roster import write_roster

    nodes, pki_dir, coordinator, output = experiment_parts(experiment)
    missing = [n for n, _, m in nodes if m is None]
    if missing:
        raise ConfigError(str(experiment), [f"node {m!r} has no manifest to start it from" for m in missing])
    manifests = {n: m for n, _, m in nodes if m is not None}
    share = per_process or spread(len(manifests))
    prepare_identities(pki_dir, manifests, coordinator)
    console.print(f"starting {len(manifests)} nodes, {share} per process ...")
    with serving_bar(len(manifests)) as on_ready:
        started = start_nodes(
            manifests, output / "nodes", pki_dir=pki_dir, per_process=share, detached=True, timeout=startup_timeout,
            on_ready=on_ready,
        )  # fmt: skip
    path = roster or output / "nodes" / "roster.json"
    write_roster(path, experiment, started)
    for node in started:
        console.print(f"  {node.node_id:<24} pid {node.process.pid:<7} {node.address}")
    console.print(f"roster: {path}\nstop them with: federation nodes down {path}")


@nodes_app.command("down")
def nodes_down(
    roster: Annotated[Path, typer.Argument(help="The roster `nodes up` wrote.")],
) -> None:
    """Stop every node process the roster lists (and only those), then remove the roster."""
    from federation.experiments.roster import read_roster, stop_roster

    entries = read_roster(roster)
    outcome = stop_roster(entries)
    for node_id, what in outcome.items():
        console.print(f"  {node_id:<24} {what}")
    roster.unlink()
