"""`federation psi`: find the firms every party holds, with only what each policy allows disclosed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from federation.cli_admin import experiment_nodes, parse_addresses, setup_logging

console = Console()


def psi_cmd(
    experiment: Annotated[Path, typer.Argument(help='A PSI experiment file (kind = "psi").')],
    address: Annotated[list[str] | None, typer.Option(help="NODE=HOST:PORT of a running node (repeatable).")] = None,
    start: Annotated[bool, typer.Option(help="Start a node process per manifest, as the demo does.")] = False,
    per_process: Annotated[
        int, typer.Option(help="With --start: nodes hosted in each process (each still its own party).", min=1)
    ] = 1,
    roster: Annotated[Path | None, typer.Option(help="Node addresses from this roster (`federation nodes up`).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run one private set intersection; print the set sizes and what each party was told."""
    setup_logging(verbose)
    from federation.coordinator.client import NodeClient
    from federation.coordinator.psi import run_psi
    from federation.experiments.psi_config import load_psi_experiment
    from federation.transport.tls import Identity

    loaded = load_psi_experiment(experiment)
    from federation.experiments.roster import read_roster

    listed = [f"{e.node_id}={e.address}" for e in read_roster(roster)] if roster is not None else []
    given = parse_addresses([*listed, *(address or [])])
    with experiment_nodes(
        experiment, loaded.nodes, given, start=start, pki_dir=loaded.pki_dir, coordinator=loaded.coordinator,
        work_dir=loaded.output_dir / "nodes", per_process=per_process,
    ) as addresses:  # fmt: skip
        identity = Identity.in_directory(loaded.pki_dir, loaded.coordinator)
        clients = {n: NodeClient(n, a, identity, timeout=loaded.timeout) for n, a in addresses.items()}
        try:
            outcome = run_psi(clients, loaded.new_terms(), purpose=loaded.purpose)
        finally:
            for client in clients.values():
                client.close()
    table = Table(title=f"PSI run {outcome.terms.run_id}")
    for column in ("party", "distinct keys", "granted", "bytes from node"):
        table.add_column(column)
    for party in outcome.terms.parties:
        table.add_row(party, str(outcome.sizes[party]), outcome.told.get(party, "?"), str(outcome.bytes_by_node[party]))
    console.print(table)
    shown = "not disclosed to the coordinator" if outcome.count is None else str(outcome.count)
    console.print(f"intersection size: {shown}; {outcome.seconds:.1f} s")
    loaded.output_dir.mkdir(parents=True, exist_ok=True)
    report = loaded.output_dir / f"{outcome.terms.run_id}.json"
    body = {
        "run_id": outcome.terms.run_id,
        "rule": outcome.terms.rule,
        "receiver": outcome.terms.receiver,
        "set_sizes": outcome.sizes,
        "coordinator_count": outcome.count,
        "told": outcome.told,
        "bytes_by_node": outcome.bytes_by_node,
        "seconds": round(outcome.seconds, 3),
    }
    report.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    console.print(f"report: {report}")
