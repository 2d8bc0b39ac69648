"""`federation audit show | verify`: a node's audit log for its staff and auditors.

Every value in a log may come from a remote caller, so it is printed as
text: rich markup is escaped and control characters (terminal escape codes,
newlines) are shown as `\\x1b`-style escapes, never interpreted.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from federation.errors import ConfigError
from federation.logs import inert

audit_app = typer.Typer(no_args_is_help=True, help="Read and verify a node's audit log.")
console = Console()
err = Console(stderr=True)


def printable(value: Any) -> str:
    """Untrusted text as inert text: control characters escaped, rich markup escaped."""
    return escape(inert(str(value)))


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


@audit_app.command("show")
def audit_show(
    node_dir: Annotated[Path, typer.Argument(help="The node's state directory (holds audit.jsonl).")],
    caller: Annotated[str | None, typer.Option(help="Only this caller.")] = None,
    purpose: Annotated[str | None, typer.Option(help="Only this purpose.")] = None,
    since: Annotated[str | None, typer.Option(help="From this date (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to and including this date (YYYY-MM-DD).")] = None,
    decision: Annotated[str | None, typer.Option(help="allow, deny or error.")] = None,
) -> None:
    """Print a node's audit log, optionally filtered."""
    from federation.node.audit import read_entries

    if not (node_dir / "audit.jsonl").is_file():
        raise ConfigError(str(node_dir), ["no audit.jsonl here: pass the node's state directory ([state] dir in its manifest)"])
    for label, value in (("--since", since), ("--until", until)):
        if value is not None and not _is_date(value):
            raise ConfigError(label, [f"expected a date as YYYY-MM-DD, got {value!r}"])
    table = Table(title=f"audit log of {printable(node_dir)}")
    for column in ("seq", "time", "caller", "rpc", "purpose", "run / round", "decision", "rows", "bytes", "reasons"):
        table.add_column(column, overflow="fold")
    shown = 0
    for e in read_entries(node_dir):
        day = str(e.get("time", ""))[:10]
        if (caller and e.get("caller") != caller) or (purpose and e.get("purpose") != purpose):
            continue
        if (since and day < since) or (until and day > until) or (decision and e.get("decision") != decision):
            continue
        shown += 1
        colour = {"allow": "green", "deny": "red"}.get(str(e.get("decision")), "yellow")
        reasons = e.get("reasons")
        table.add_row(
            *(printable(e.get(key)) for key in ("seq", "time", "caller", "rpc", "purpose")),
            f"{printable(e.get('run_id'))} / {printable(e.get('round'))}",
            f"[{colour}]{printable(e.get('decision'))}[/]",
            printable(e.get("rows")),
            printable(e.get("bytes_released")),
            "; ".join(printable(r) for r in reasons) if isinstance(reasons, list) else printable(reasons),
        )
    console.print(table)
    console.print(f"{shown} entr{'y' if shown == 1 else 'ies'} shown")


@audit_app.command("verify")
def audit_verify(
    node_dir: Annotated[Path, typer.Argument(help="The node's state directory (holds audit.jsonl).")],
    ca: Annotated[
        Path | None, typer.Option(help="The federation CA's certificate: the signing certificate must be issued by it.")
    ] = None,
    receipts: Annotated[
        Path | None, typer.Option(help="A coordinator's run directory: the log must hold every entry the node signed for it.")
    ] = None,
) -> None:
    """Check the chain and signatures: edited, deleted, inserted, reordered or forged entries are found; crashes are noted."""
    from federation.node.audit import verify

    result = verify(node_dir, ca=ca, receipts=receipts)
    for note in result.notes:
        console.print(f"[yellow]note[/]: {printable(note)}")
    if result.intact:
        signed = f", signed by {printable(result.signer)}" if result.signer else ", unsigned"
        checked = f", {result.receipts} receipts match" if receipts is not None else ""
        console.print(f"[green]intact[/]: {result.entries} entries, chain and head agree{signed}{checked}")
        if ca is None and result.signer:
            console.print("signatures were checked against the certificate kept beside the log; pass --ca to check its issuer")
        return
    for problem in result.problems:
        err.print(f"[red]broken[/]: {printable(problem)}")
    raise typer.Exit(1)


def verify_nodes(state_dirs: dict[str, Path], ca: Path, run_dir: Path) -> None:
    """One line per node: its audit log checked against the CA and the receipts this run kept."""
    from federation.node.audit import verify

    console.print(f"audit logs, checked against the CA and the receipts in {printable(run_dir)}:")
    for node_id, state in state_dirs.items():
        result = verify(state, ca=ca, receipts=run_dir)
        status = "[green]intact[/]" if result.intact else "[red]broken[/]: " + printable("; ".join(result.problems))
        console.print(f"  {printable(node_id):<20} {status} ({result.entries} entries, {result.receipts} receipts)")
