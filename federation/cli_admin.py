"""`federation node`, `pki`, `policy` and `data`: what a department's IT staff run next to their data."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from federation.errors import ConfigError

node_app = typer.Typer(no_args_is_help=True, help="Run a department's node.")
pki_app = typer.Typer(no_args_is_help=True, help="Certificates for nodes and coordinators.")
policy_app = typer.Typer(no_args_is_help=True, help="Check, explain and compare sharing policies.")
data_app = typer.Typer(no_args_is_help=True, help="Check a node's local data against the scenario's schema.")
console = Console()
err = Console(stderr=True)

DEFAULT_PKI = Path(".federation/pki")


def parse_addresses(values: list[str]) -> dict[str, str]:
    """NODE=HOST:PORT flags, as `compare`, `run` and `psi` take them."""
    result = {}
    for value in values:
        node, sep, address = value.partition("=")
        if not sep or not node or ":" not in address:
            raise ConfigError("--address", [f"expected NODE=HOST:PORT, got {value!r}"])
        result[node] = address
    return result


@contextmanager
def serving_bar(total: int) -> Iterator[Callable[[int, int], None]]:
    """A progress bar of nodes serving, for `start_nodes(on_ready=...)`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("nodes serving", total=total)
        yield lambda ready, _total: progress.update(task, completed=ready)


NodeList = list[tuple[str, str | None, Path | None]]  # (id, address, manifest) as an experiment file lists them


@contextmanager
def experiment_nodes(
    experiment: Path,
    nodes: NodeList,
    given: dict[str, str],
    *,
    start: bool,
    pki_dir: Path,
    coordinator: str,
    work_dir: Path,
    per_process: int = 1,
) -> Iterator[dict[str, str]]:
    """Every node's address: from `--address`, the file, or (with `start`) a node process per manifest, stopped on leaving."""
    from federation.experiments.launcher import exit_on_signals, prepare_identities, spread, start_nodes, stop_nodes

    started = []
    with exit_on_signals():
        if start:
            missing = [n for n, _, m in nodes if m is None]
            if missing:
                raise ConfigError(str(experiment), [f"node {m!r} has no manifest to start it from" for m in missing])
            manifests = {n: m for n, _, m in nodes if m is not None}
            prepare_identities(pki_dir, manifests, coordinator)
            console.print(f"starting {len(manifests)} node processes ...")
            share = per_process or spread(len(manifests))  # 0: spread over the cores
            with serving_bar(len(manifests)) as on_ready:
                started = start_nodes(manifests, work_dir, pki_dir=pki_dir, per_process=share, on_ready=on_ready)
            for node in started:
                console.print(f"  {node.node_id:<20} pid {node.process.pid:<7} {node.address}")
        try:
            addresses = {**{n.node_id: n.address for n in started}, **given}
            unknown = sorted(set(given) - {n for n, _, _ in nodes})
            problems = [f"--address names {u!r}, which is not a node of this experiment" for u in unknown]
            problems += [
                f"node {n!r} has no address (--address NODE=HOST:PORT, or --start)"
                for n, a, _ in nodes
                if addresses.get(n, a) is None
            ]
            if problems:
                raise ConfigError(str(experiment), problems)
            yield {n: addresses.get(n, a) or "" for n, a, _ in nodes}
        finally:
            if started:
                stop_nodes(started)
                console.print("nodes stopped")


def setup_logging(verbose: bool) -> None:
    from federation.logs import configure

    configure(logging.INFO if verbose else logging.WARNING)
    import flwr.common.logger  # noqa: F401 - configures flwr's logger, which we then quieten

    flwr_logger = logging.getLogger("flwr")
    flwr_logger.setLevel(logging.INFO if verbose else logging.ERROR)
    flwr_logger.propagate = False


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
    setup_logging(verbose)
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


@node_app.command("host")
def node_host(
    spec: Annotated[Path, typer.Argument(help="A JSON list of the nodes to host (written by the launcher).")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = True,
) -> None:
    """Serve several nodes in one process, each a separate party: own port, certificate, policy, state and audit log."""
    err.print(f"starting: loading the nodes of {spec} ...", markup=False, highlight=False)
    setup_logging(verbose)
    from federation.node.serve import host_nodes, serve_forever

    servers = host_nodes(spec)
    serve_forever(*servers)


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
    names: Annotated[list[str] | None, typer.Argument(help="Party names: each certificate's common name.")] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help=f"The PKI (default: the experiment's, else {DEFAULT_PKI}).")
    ] = None,
    experiment: Annotated[
        Path | None, typer.Option(help="Also every node of this experiment file and its coordinator (any kind).")
    ] = None,
    host: Annotated[list[str] | None, typer.Option(help="Extra host name or IP the node is reached at.")] = None,
    days: Annotated[int, typer.Option(help="How long each certificate is valid.")] = 825,
) -> None:
    """Issue certificates for nodes or coordinators, signed by the CA."""
    from federation.transport.tls import issue_certificate

    names = list(names or [])
    if experiment is not None:
        from federation.cli_nodes import experiment_parts

        nodes, experiment_pki, coordinator, _ = experiment_parts(experiment)
        names += [n for n, _, _ in nodes] + [coordinator]
        directory = directory or experiment_pki
    directory = directory or DEFAULT_PKI
    if not names:
        raise ConfigError("pki issue", ["name at least one party, or --experiment FILE"])
    for name in dict.fromkeys(names):
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
            err.print(f"[red]invalid[/] {escape(str(error))}")
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
    if loaded.keys is not None:
        from federation.node.keys import prepare_rows

        keys = prepare_rows(table, loaded.keys, where=str(manifest))
        console.print(f"firm keys (column {loaded.keys.column!r}): " + "; ".join(keys.report.lines()))
