"""`federation compare` and `demo` of a vertical experiment, and `federation score` for the label party's staff."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from federation.cli_admin import experiment_nodes
from federation.errors import ConfigError

console = Console()


def vertical_compare(
    experiment_path: Path,
    addresses: dict[str, str],
    *,
    output: Path | None,
    start: bool,
    seeds: int | None = None,
    per_process: int = 1,
) -> Path:
    """PSI, then vertical, central-pool and local-only over the seeds; print the table and write the report."""
    from federation.coordinator.client import NodeClient
    from federation.experiments.vertical_compare import compare_vertical
    from federation.experiments.vertical_config import load_vertical_experiment
    from federation.report.vertical import render_vertical, summary_header, summary_rows, verdicts
    from federation.transport.receipts import ReceiptBook
    from federation.transport.tls import CA_NAME, Identity

    loaded = load_vertical_experiment(experiment_path)
    if seeds is not None:
        loaded.seeds = seeds
    manifests = {n: m for n, _, m in loaded.nodes if m is not None}
    run_dir = (output or loaded.output_dir) / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    with experiment_nodes(
        experiment_path, loaded.nodes, addresses, start=start, pki_dir=loaded.pki_dir, coordinator=loaded.coordinator,
        work_dir=loaded.output_dir / "nodes", per_process=per_process,
    ) as found:  # fmt: skip
        identity = Identity.in_directory(loaded.pki_dir, loaded.coordinator)
        run_dir.mkdir(parents=True, exist_ok=True)
        book = ReceiptBook(run_dir)
        clients = {n: NodeClient(n, a, identity, timeout=loaded.timeout, receipts=book) for n, a in found.items()}
        try:
            with Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
            ) as progress:
                task = progress.add_task("vertical comparison", total=len(loaded.topologies) * loaded.seeds + 1)
                comparison = compare_vertical(
                    loaded, clients, run_dir, progress=lambda what: progress.update(task, advance=1, description=what)
                )
        finally:
            for client in clients.values():
                client.close()
    results = comparison.to_json()
    report = render_vertical(results, run_dir)
    console.print(f"{loaded.vertical.label}'s inspection model, three ways (mean±sd over {loaded.seeds} seeds):")
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    keep = [0, 1, 2, 4, 5, 6]  # recall at k is in the report; the terminal keeps to 80 columns
    header = summary_header()
    for index in keep:
        table.add_column(header[index], no_wrap=True)
    for row in summary_rows(results):
        table.add_row(*(row[index] for index in keep))
    console.print(table)
    for line in verdicts(results):
        console.print(f"- {line}")
    console.print(f"results: {run_dir / 'results.json'}\nreport:  {report}")
    if start:
        from federation.cli_audit import verify_nodes
        from federation.node.manifest import load_manifest

        verify_nodes({n: load_manifest(m).state_dir for n, m in manifests.items()}, loaded.pki_dir / f"{CA_NAME}.crt", run_dir)
    return run_dir


def score_cmd(
    manifest: Annotated[Path, typer.Argument(help="The label party's node manifest (run this on the label party's machine).")],
    run: Annotated[str | None, typer.Option(help="The vertical run whose ranking to show (default: the newest).")] = None,
    top: Annotated[int, typer.Option(help="How many firms to list: the inspection budget.", min=1)] = 20,
) -> None:
    """The label party's firms ranked by predicted risk, read from its own node's files (no network call)."""
    from federation.node.manifest import load_manifest
    from federation.node.vertical_handlers import OUTPUT_DIR, output_path

    state = load_manifest(manifest).state_dir
    folder = state / OUTPUT_DIR
    if run is not None:
        path = output_path(state, run)
        if not path.is_file():
            raise ConfigError(str(manifest), [f"this node keeps no ranking of vertical run {run!r} (looked in {folder})"])
    else:
        kept = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
        if not kept:
            raise ConfigError(
                str(manifest), [f"this node keeps no ranking yet (none in {folder}): it was the label party of no run"]
            )
        path = kept[-1]
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        ranking = [str(key) for key in body["ranking"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(str(path), [f"not a ranking this node wrote: {error}"]) from None
    console.print(f"next inspections: the {min(top, len(ranking))} riskiest of {len(ranking)} shared firms", soft_wrap=True)
    console.print(f"(vertical run {body.get('run_id')}; the ranking never left this node)", soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("rank", justify="right")
    table.add_column("firm key")
    for index, key in enumerate(ranking[:top], start=1):
        table.add_row(str(index), key)
    console.print(table)
