"""The `federation` command: node, pki, run, compare, policy, demo.

The only module that prints, prompts or exits. Every FederationError ends
the command with its message and exit code 2; tracebacks are for bugs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from federation.cli_audit import audit_app
from federation.errors import ConfigError, FederationError

if TYPE_CHECKING:
    from federation.experiments.compare import ProgressFactory
    from federation.models.evaluation import EvalSums

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help=__doc__)
node_app = typer.Typer(no_args_is_help=True, help="Run a department's node.")
pki_app = typer.Typer(no_args_is_help=True, help="Certificates for nodes and coordinators.")
policy_app = typer.Typer(no_args_is_help=True, help="Check, explain and compare sharing policies.")
data_app = typer.Typer(no_args_is_help=True, help="Check a node's local data against the scenario's schema.")
app.add_typer(node_app, name="node")
app.add_typer(pki_app, name="pki")
app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")
app.add_typer(data_app, name="data")
console = Console()
err = Console(stderr=True)

DEFAULT_PKI = Path(".federation/pki")


def _setup_logging(verbose: bool) -> None:
    from federation.logs import configure

    configure(logging.INFO if verbose else logging.WARNING)
    import flwr.common.logger  # noqa: F401 - configures flwr's logger, which we then quieten

    flwr_logger = logging.getLogger("flwr")
    flwr_logger.setLevel(logging.INFO if verbose else logging.ERROR)
    flwr_logger.propagate = False


def _parse_addresses(values: list[str]) -> dict[str, str]:
    result = {}
    for value in values:
        node, sep, address = value.partition("=")
        if not sep or not node or ":" not in address:
            raise ConfigError("--address", [f"expected NODE=HOST:PORT, got {value!r}"])
        result[node] = address
    return result


# -- node ---------------------------------------------------------------------
@node_app.command("serve")
def node_serve(
    manifest: Annotated[Path, typer.Argument(help="The node manifest (nodes/NAME.toml).")],
    listen: Annotated[str, typer.Option(help="HOST:PORT to bind; port 0 picks a free one.")] = "127.0.0.1:0",
    address_file: Annotated[Path | None, typer.Option(help="Write the bound HOST:PORT here once serving.")] = None,
    pki: Annotated[Path | None, typer.Option(help="PKI directory; defaults to the manifest's [tls] dir.")] = None,
    policy: Annotated[Path | None, typer.Option(help="A policy or preset file replacing the manifest's policy.")] = None,
    state: Annotated[Path | None, typer.Option(help="State directory (audit log, ledger) replacing the manifest's.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = True,
) -> None:
    """Serve a node: load and harmonise its data, enforce its policy, answer over mTLS."""
    err.print(f"starting: loading manifest {manifest} ...", markup=False, highlight=False)  # before the slow imports
    _setup_logging(verbose)
    from federation.node.serve import serve_forever, start_node

    server, port, runtime = start_node(manifest, listen=listen, pki_dir=pki, policy_path=policy, state_dir=state)
    address = f"{listen.rsplit(':', 1)[0]}:{port}"
    if address_file is not None:
        tmp = address_file.with_suffix(".tmp")
        tmp.write_text(address)
        tmp.replace(address_file)
    err.print(
        f"node [bold]{runtime.node_id}[/] serving on {address} ({len(runtime.train)} train / {len(runtime.test)} test records)"
    )
    serve_forever(server)


# -- pki ----------------------------------------------------------------------
@pki_app.command("init")
def pki_init(
    directory: Annotated[Path, typer.Option("--dir", help="Where to keep the CA.")] = DEFAULT_PKI,
    days: Annotated[int, typer.Option(help="How long the CA certificate is valid.")] = 3650,
) -> None:
    """Create a certificate authority for a federation."""
    from federation.transport.tls import init_ca

    console.print(f"CA certificate written to {init_ca(directory, days=days)}")


@pki_app.command("issue")
def pki_issue(
    names: Annotated[list[str], typer.Argument(help="Party names: each certificate's common name.")],
    directory: Annotated[Path, typer.Option("--dir")] = DEFAULT_PKI,
    host: Annotated[list[str] | None, typer.Option(help="Extra host name or IP the node is reached at.")] = None,
    days: Annotated[int, typer.Option(help="How long each certificate is valid.")] = 825,
) -> None:
    """Issue certificates for nodes or coordinators, signed by the CA."""
    from federation.transport.tls import issue_certificate

    for name in names:
        identity = issue_certificate(directory, name, hosts=tuple(host or ()), days=days)
        console.print(f"{name}: certificate {identity.cert}, key {identity.key}")


@pki_app.command("revoke")
def pki_revoke(
    names: Annotated[list[str], typer.Argument(help="Parties whose current certificate is revoked.")],
    directory: Annotated[Path, typer.Option("--dir")] = DEFAULT_PKI,
) -> None:
    """Revoke certificates: nodes reading this PKI's ca.crl refuse them as callers and as cohort members."""
    from federation.transport.tls import revoke_certificate

    for name in names:
        console.print(f"{name}: revoked; revocation list {revoke_certificate(directory, name)}")


@pki_app.command("pin")
def pki_pin(
    names: Annotated[list[str], typer.Argument(help="Parties this node accepts as fellow contributors.")],
    directory: Annotated[Path, typer.Option("--dir")] = DEFAULT_PKI,
    out: Annotated[Path | None, typer.Option(help="Pin file to write (default: DIR/peers.toml).")] = None,
) -> None:
    """Write a pin file of the named parties' certificate fingerprints, for a manifest's [peers] pins."""
    from federation.transport.tls import write_pins

    path = write_pins(directory, names, path=out)
    console.print(f"pinned {len(set(names))} certificate(s) in {path}")
    console.print(path.read_text(), markup=False, highlight=False)


# -- policy -------------------------------------------------------------------
@policy_app.command("check")
def policy_check(
    files: Annotated[list[Path], typer.Argument(help="Policy files to validate.")],
    schema: Annotated[Path | None, typer.Option(help="The scenario's schema, to check rules against its target.")] = None,
) -> None:
    """Validate policy files; report every problem of every file."""
    from federation.data.schema import load_schema
    from federation.policy.model import load_policy

    target = load_schema(schema).target if schema is not None else None
    failed = False
    for path in files:
        try:
            policy = load_policy(path, target=target, party=path.stem)
            console.print(f"[green]ok[/] {path}: {len(policy.rule)} rule(s) for {policy.party}")
        except ConfigError as error:
            failed = True
            err.print(f"[red]invalid[/] {error}")
    if failed:
        raise typer.Exit(2)


@policy_app.command("explain")
def policy_explain(
    files: Annotated[list[Path], typer.Argument(help="Policy files (or presets) to explain.")],
    experiment: Annotated[Path, typer.Option(help="The experiment whose request is explained.")],
) -> None:
    """For each policy: which rule matches the experiment's request under each topology, and why."""
    import datetime as dt

    from federation.experiments.config import load_experiment
    from federation.policy.evaluate import Request
    from federation.policy.explain import explain
    from federation.policy.model import load_policy

    loaded = load_experiment(experiment)
    task = loaded.task
    request = Request(
        caller=loaded.coordinator,
        purpose=loaded.purpose,
        release="none",
        model=task.model.name,
        columns=(*task.features, task.target),
        rounds=task.rounds,
        cohort_size=len(loaded.nodes),
    )
    for path in files:
        policy = load_policy(path, party=path.stem)
        table = Table(title=f"{policy.party} ({path}) for {loaded.coordinator} / {loaded.purpose}", show_lines=True)
        for column in ("topology", "decision", "rule", "why"):
            table.add_column(column, overflow="fold")
        for item in explain(policy, request, today=dt.date.today()):
            d = item.decision
            verdict = "[green]allow[/]" if d.allowed else "[red]budget spent[/]" if d.budget_exhausted else "[red]refuse[/]"
            table.add_row(item.topology, verdict, d.rule or "-", "\n".join(d.reasons))
        console.print(table)


@policy_app.command("diff")
def policy_diff(
    old: Annotated[Path, typer.Argument(help="The policy before.")],
    new: Annotated[Path, typer.Argument(help="The policy after.")],
) -> None:
    """What changes between two policies, in plain words."""
    from federation.policy.explain import diff
    from federation.policy.model import load_policy

    for line in diff(load_policy(old, party=old.stem), load_policy(new, party=new.stem)):
        console.print(f"- {line}")


# -- data -----------------------------------------------------------------------
@data_app.command("check")
def data_check(manifest: Annotated[Path, typer.Argument(help="The node manifest (nodes/NAME.toml).")]) -> None:
    """Harmonise the node's data as the node would and print the local quality report.

    Runs on the node's own machine: it reads the raw data, so its output stays there.
    """
    from federation.data.mapping import harmonise
    from federation.data.schema import load_schema
    from federation.data.sources import read_table
    from federation.node.manifest import load_manifest

    loaded = load_manifest(manifest)
    schema = load_schema(loaded.schema_path)
    table = read_table(loaded.data_path, fmt=loaded.data_format, query=loaded.query)
    result = harmonise(table, schema, loaded.mapping, source=str(manifest))
    console.print(f"[bold]{loaded.node_id}[/]: {loaded.data_path.name} -> schema {schema.name!r}")
    for line in result.report.lines():
        console.print(line)
    mapped = [name for name, column in loaded.mapping.columns.items() if column.unit or column.codes or column.format]
    if mapped:
        console.print(
            f"converted on the way: {', '.join(mapped)}"
            + (f"; {len(loaded.mapping.versions)} dated mapping version(s)" if loaded.mapping.versions else "")
        )


# -- run / compare --------------------------------------------------------------
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
) -> Path:
    from federation.experiments.compare import compare
    from federation.experiments.config import load_experiment
    from federation.report.render import render

    experiment = load_experiment(experiment_path)
    resolved = experiment.addresses(addresses)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        comparison = compare(
            experiment,
            resolved,
            topologies_to_run=topologies,
            progress=_progress_factory(progress),
            output_dir=output,
            resume=resume,
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
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run federated, central-pool and local-only on the same nodes and report."""
    _setup_logging(verbose)
    if seeds is None:
        _compare(experiment, _parse_addresses(address or []), None, output, resume)
        return
    if resume is not None:
        raise ConfigError("--resume", ["resume one seed's run directory (seed-<n>/) without --seeds"])
    _compare_seeds(experiment, _parse_addresses(address or []), seeds, output)


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
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Federated training only: checkpoints per round, metrics as JSON and CSV."""
    _setup_logging(verbose)
    _compare(experiment, _parse_addresses(address or []), ["federated"], output, resume)


@app.command("sweep")
def sweep_cmd(
    experiment: Annotated[Path, typer.Argument(help="The experiment file; its nodes need manifests (the sweep starts them).")],
    vary: Annotated[list[str], typer.Option(help="KEY=V1,V2,... (repeatable), e.g. privacy.epsilon=0.5,1,2,inf")],
    output: Annotated[Path | None, typer.Option(help="Sweep directory; an interrupted sweep resumes from it.")] = None,
    startup_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for the node processes to serve (default: 60 + 10 per node).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run every combination of the varied settings and plot the trade-offs."""
    _setup_logging(verbose)
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
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Start a real node process per party, compare the three topologies, stop the nodes."""
    _setup_logging(verbose)
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
        nodes = start_nodes(
            manifests, loaded.output_dir / "nodes", pki_dir=loaded.pki_dir, policy=policy, timeout=startup_timeout
        )
        try:
            for node in nodes:
                console.print(f"  {node.node_id:<20} pid {node.process.pid:<7} {node.address}")
            run_dir = _compare(experiment, {n.node_id: n.address for n in nodes}, None, None)
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
        err.print(f"[red]error:[/] {error.public}")
        sys.exit(2)


if __name__ == "__main__":
    main()
