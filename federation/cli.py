"""The `federation` command: node, pki, run, compare, policy, demo.

The only module that prints, prompts or exits. Every FederationError ends
the command with its message and exit code 2; tracebacks are for bugs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from federation.cli_admin import data_app, node_app, parse_addresses, pki_app, policy_app, serving_bar, setup_logging
from federation.cli_audit import audit_app
from federation.cli_engine import ENGINE_HELP, RAY_HELP, WORKERS_HELP, Engine
from federation.cli_nodes import nodes_app
from federation.cli_psi import psi_cmd
from federation.cli_vertical import score_cmd, vertical_compare
from federation.errors import ConfigError, FederationError

if TYPE_CHECKING:
    from federation.experiments.compare import ProgressFactory
    from federation.models.evaluation import EvalSums

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help=__doc__)
app.add_typer(node_app, name="node")
app.add_typer(nodes_app, name="nodes")
app.add_typer(pki_app, name="pki")
app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")
app.add_typer(data_app, name="data")
app.command("psi")(psi_cmd)
app.command("score")(score_cmd)
console = Console()
err = Console(stderr=True)


# -- run / compare --------------------------------------------------------------


def _with_roster(roster: Path | None, address: list[str] | None) -> list[str]:
    """--address values, after the roster's (an explicit --address wins)."""
    if roster is None:
        return address or []
    from federation.experiments.roster import read_roster

    return [f"{e.node_id}={e.address}" for e in read_roster(roster)] + (address or [])


def _is_vertical(experiment: Path) -> bool:
    from federation.experiments.vertical_config import experiment_kind

    return experiment_kind(experiment) == "vertical"


def _progress_factory(progress: Progress) -> ProgressFactory:
    def factory(label: str, rounds: int) -> Callable[[int, dict[str, EvalSums]], None]:
        task_id = progress.add_task(label, total=rounds)
        return lambda round_, sums: progress.update(task_id, completed=round_)

    return factory


def print_summary(results: dict[str, Any]) -> None:
    from federation.report.render import summary_header, summary_notes, summary_rows

    table = Table(title=f"{results['experiment']}: overall {str(results['metric']).upper()} and what left the nodes")
    header = summary_header(str(results["metric"]), str(results["metric"]).upper())
    for index, column in enumerate(header):
        table.add_column(column, no_wrap=index == 0)
    for row in summary_rows(results):
        table.add_row(*row)
    console.print(table)
    for note in summary_notes(results):
        console.print(f"  {note}")
    quality = results.get("quality") or {}
    if quality:
        quality_table = Table(title="data quality, as counted by each node (records read / kept / excluded)")
        for column in ("node", "read", "kept", "excluded", "main reason"):
            quality_table.add_column(column)
        for node, q in sorted(quality.items()):
            top = max(q["excluded"].items(), key=lambda kv: kv[1], default=("-", 0))
            quality_table.add_row(node, str(q["total"]), str(q["kept"]), str(q["total"] - q["kept"]), f"{top[0]} ({top[1]})")
        console.print(quality_table)
    gains = results["gain_vs_local_only"]
    if gains:
        gain_table = Table(title=f"{str(results['metric']).upper()} gain against local-only, per node")
        gain_table.add_column("node")
        for name in gains:
            gain_table.add_column(name)
        for node in results["nodes"]:
            values = [gains[name].get(node) for name in gains]
            gain_table.add_row(node, *("n/a" if v is None else f"{v:+.3f}" for v in values))
        console.print(gain_table)


def _compare(
    experiment_path: Path,
    addresses: dict[str, str],
    topologies: list[str] | None,
    output: Path | None,
    resume: Path | None = None,
    engine: Engine | None = None,
) -> Path:
    from federation.experiments.compare import compare
    from federation.experiments.config import load_experiment
    from federation.report.render import render

    experiment = load_experiment(experiment_path)
    simulated = engine is not None and engine.name != "grpc"
    resolved = {} if simulated else experiment.addresses(addresses)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        answers = progress.add_task("nodes answered", total=None)

        def on_wait(answered: int, asked: int) -> None:
            progress.update(answers, completed=answered, total=asked)

        if engine is not None and simulated:
            from federation.flower.simulation import compare_simulated

            comparison = compare_simulated(
                experiment,
                topologies_to_run=topologies,
                progress=_progress_factory(progress),
                output_dir=output,
                workers=engine.workers,
                ray_address=engine.ray_address,
                on_wait=on_wait,
            )
        else:
            comparison = compare(
                experiment,
                resolved,
                topologies_to_run=topologies,
                progress=_progress_factory(progress),
                output_dir=output,
                resume=resume,
                on_wait=on_wait,
            )
    results = comparison.to_json()
    report = render(results, comparison.run_dir)
    print_summary(results)
    console.print(f"results: {comparison.run_dir / 'results.json'}\nreport:  {report}")
    return comparison.run_dir


@app.command("compare")
def compare_cmd(
    experiment: Annotated[Path, typer.Argument(help="The experiment file.")],
    address: Annotated[list[str] | None, typer.Option(help="NODE=HOST:PORT, overrides the file.")] = None,
    output: Annotated[Path | None, typer.Option(help="Directory for the run (default: the experiment's output).")] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue an interrupted run in this run directory (same run ids and results).")
    ] = None,
    seeds: Annotated[
        int | None, typer.Option(help="Repeat the whole comparison over N seeds and report every figure with its spread.")
    ] = None,
    roster: Annotated[Path | None, typer.Option(help="Node addresses from this roster (`federation nodes up`).")] = None,
    engine: Annotated[str, typer.Option(help=ENGINE_HELP)] = "grpc",
    workers: Annotated[int | None, typer.Option(help=WORKERS_HELP, min=1)] = None,
    ray_address: Annotated[str | None, typer.Option(help=RAY_HELP)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run federated, central-pool and local-only on the same nodes and report (vertical experiments too)."""
    setup_logging(verbose)
    chosen = Engine.parse(engine, workers=workers, ray_address=ray_address)
    address = _with_roster(roster, address)
    if chosen.name != "grpc":
        from federation.flower.simulation import require_simulation

        require_simulation()  # before anything is read or started
        refused = [flag for flag, given in (("--address", address), ("--resume", resume), ("--seeds", seeds)) if given]
        if refused or _is_vertical(experiment):
            what = ", ".join(refused) if refused else "a vertical experiment"
            raise ConfigError("--engine", [f"{what} runs on the gRPC engine only, not with --engine {chosen.name}"])
        _compare(experiment, {}, None, output, engine=chosen)
        return
    if _is_vertical(experiment):
        if resume is not None:
            raise ConfigError("--resume", ["a vertical comparison is not resumable: run it again"])
        vertical_compare(experiment, parse_addresses(address or []), output=output, start=False, seeds=seeds)
        return
    if seeds is None:
        _compare(experiment, parse_addresses(address or []), None, output, resume)
        return
    if resume is not None:
        raise ConfigError("--resume", ["resume one seed's run directory (seed-<n>/) without --seeds"])
    _compare_seeds(experiment, parse_addresses(address or []), seeds, output)


def _compare_seeds(experiment_path: Path, addresses: dict[str, str], count: int, output: Path | None) -> Path:
    from federation.experiments.config import load_experiment
    from federation.experiments.seeds import compare_seeds, seeds_for
    from federation.report.seeds import render_seeds

    experiment = load_experiment(experiment_path)
    chosen = seeds_for(experiment, count)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        run = compare_seeds(
            experiment, experiment.addresses(addresses), chosen, progress=_progress_factory(progress), output_dir=output
        )
    report = render_seeds(run.summary, run.run_dir)
    console.print(f"{len(chosen)} seeds: {run.run_dir / 'parties.csv'}\nreport:  {report}")
    return run.run_dir


@app.command("run")
def run_cmd(
    experiment: Annotated[Path, typer.Argument(help="The experiment file.")],
    address: Annotated[list[str] | None, typer.Option(help="NODE=HOST:PORT, overrides the file.")] = None,
    output: Annotated[Path | None, typer.Option(help="Directory for the run.")] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue an interrupted run in this run directory (same run ids and results).")
    ] = None,
    roster: Annotated[Path | None, typer.Option(help="Node addresses from this roster (`federation nodes up`).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Federated training only: checkpoints per round, metrics as JSON and CSV."""
    setup_logging(verbose)
    address = _with_roster(roster, address)
    _compare(experiment, parse_addresses(address or []), ["federated"], output, resume)


@app.command("sweep")
def sweep_cmd(
    experiment: Annotated[Path, typer.Argument(help="The experiment file; its nodes need manifests (the sweep starts them).")],
    vary: Annotated[list[str], typer.Option(help="KEY=V1,V2,... (repeatable), e.g. privacy.epsilon=0.5,1,2,inf")],
    output: Annotated[Path | None, typer.Option(help="Sweep directory; an interrupted sweep resumes from it.")] = None,
    startup_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for the node processes to serve (default: 60 + 10 per node).")
    ] = None,
    engine: Annotated[str, typer.Option(help=ENGINE_HELP + " On it, every point runs at once.")] = "grpc",
    workers: Annotated[int | None, typer.Option(help=WORKERS_HELP, min=1)] = None,
    ray_address: Annotated[str | None, typer.Option(help=RAY_HELP)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run every combination of the varied settings and plot the trade-offs."""
    setup_logging(verbose)
    chosen = Engine.parse(engine, workers=workers, ray_address=ray_address)
    if chosen.name != "grpc":
        from federation.flower.simulation import require_simulation

        require_simulation()  # before anything is read or started
    from federation.experiments.config import load_experiment
    from federation.experiments.launcher import prepare_identities
    from federation.experiments.sweep import combinations, parse_vary, run_sweep
    from federation.report.sweep import render_sweep

    loaded = load_experiment(experiment)
    variations = parse_vary(vary, loaded)
    out_dir = output or loaded.output_dir / ("sweep-" + "-".join(v.key.replace("*", "all") for v in variations))
    prepare_identities(loaded.pki_dir, {n: m for n, _, m in loaded.nodes if m is not None}, loaded.coordinator)
    total = len(combinations(variations))
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        runs = progress.add_task("sweep", total=total)
        if chosen.name != "grpc":
            from federation.flower.sweep import sweep_simulated

            points = sweep_simulated(
                loaded,
                variations,
                out_dir,
                progress=_progress_factory(progress),
                on_point=lambda p: progress.advance(runs),
                workers=chosen.workers,
                ray_address=chosen.ray_address,
            )
        else:
            points = run_sweep(
                loaded,
                variations,
                out_dir,
                progress=_progress_factory(progress),
                on_point=lambda p: progress.update(runs, completed=p.index + 1),
                startup_timeout=startup_timeout,
            )
        progress.update(runs, completed=total)
    report = render_sweep(points, variations, out_dir, metric=loaded.metric)
    table = Table(title=f"sweep of {', '.join(v.key for v in variations)}: overall {loaded.metric.upper()}")
    names = sorted({t["name"] for p in points for t in (p.results or {}).get("topologies", [])})
    for column in ["combination", *names]:
        table.add_column(column)
    for p in points:
        tops = {t["name"]: t for t in (p.results or {}).get("topologies", [])}
        cells = [
            f"{tops[n]['overall'][loaded.metric]:.3f}" if n in tops and tops[n]["started"] else ("refused" if n in tops else "-")
            for n in names
        ]
        table.add_row(", ".join(f"{k}={v}" for k, v in p.combination.items()), *cells)
    console.print(table)
    console.print(f"report: {report}")


# -- demo ---------------------------------------------------------------------
@app.command("demo")
def demo_cmd(
    experiment: Annotated[Path, typer.Argument(help="The experiment file.")] = Path(
        "examples/pollution_enforcement/experiment.toml"
    ),
    preset: Annotated[
        str | None, typer.Option(help="Run every node under policies/presets/NAME.toml (strict, default, open).")
    ] = None,
    startup_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for the node processes to serve (default: 60 + 10 per node).")
    ] = None,
    seeds: Annotated[
        int | None, typer.Option(help="Repeat the whole comparison over N seeds, as `compare --seeds N` does.")
    ] = None,
    per_process: Annotated[
        int | None,
        typer.Option(help="Nodes hosted in each process, each still its own party (default: spread over the cores).", min=1),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Start real node processes, compare the three topologies, stop the nodes."""
    setup_logging(verbose)
    from federation.experiments.launcher import spread

    if _is_vertical(experiment):
        if preset is not None:
            raise ConfigError("--preset", ["a vertical experiment runs under each party's own policy; presets are horizontal"])
        vertical_compare(experiment, {}, output=None, start=True, seeds=seeds, per_process=per_process or 0)
        return
    from federation.experiments.config import load_experiment
    from federation.experiments.launcher import exit_on_signals, prepare_identities, start_nodes, stop_nodes

    loaded = load_experiment(experiment)
    manifests = {node_id: manifest for node_id, _, manifest in loaded.nodes if manifest is not None}
    missing = [node_id for node_id, _, manifest in loaded.nodes if manifest is None]
    if missing:
        raise ConfigError(
            str(experiment), [f"node {m!r} has no manifest; the demo starts nodes from their manifests" for m in missing]
        )
    prepare_identities(loaded.pki_dir, manifests, loaded.coordinator)
    console.print(f"starting {len(manifests)} node processes ...")
    policy = None
    if preset is not None:
        policy = Path("policies") / "presets" / f"{preset}.toml"
        if not policy.is_file():
            known = sorted(p.stem for p in policy.parent.glob("*.toml"))
            raise ConfigError("--preset", [f"no preset {preset!r} in {policy.parent} (known: {', '.join(known) or 'none'})"])
        console.print(f"every node runs under the [bold]{preset}[/] preset")
    with exit_on_signals():  # SIGTERM or SIGHUP still stop the nodes
        with serving_bar(len(manifests)) as on_ready:
            nodes = start_nodes(
                manifests,
                loaded.output_dir / "nodes",
                pki_dir=loaded.pki_dir,
                policy=policy,
                timeout=startup_timeout,
                per_process=per_process or spread(len(manifests)),
                on_ready=on_ready,
            )
        try:
            for node in nodes:
                console.print(f"  {node.node_id:<20} pid {node.process.pid:<7} {node.address}")
            addresses = {n.node_id: n.address for n in nodes}
            if seeds is None:
                run_dir = _compare(experiment, addresses, None, None)
            else:  # every seed's receipts are in its own directory; the last seed's are checked below
                run_dir = sorted(_compare_seeds(experiment, addresses, seeds, None).glob("seed-*"))[-1]
        finally:
            stop_nodes(nodes)
            console.print("nodes stopped")
    from federation.cli_audit import verify_nodes
    from federation.node.manifest import load_manifest
    from federation.transport.tls import CA_NAME

    verify_nodes({n: load_manifest(m).state_dir for n, m in manifests.items()}, loaded.pki_dir / f"{CA_NAME}.crt", run_dir)


def main() -> None:
    try:
        app()
    except FederationError as error:
        err.print(f"[red]error:[/] {escape(error.public)}")
        sys.exit(2)


if __name__ == "__main__":
    main()
