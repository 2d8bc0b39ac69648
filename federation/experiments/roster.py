"""A roster: the nodes an experiment started and left running, so later commands find them without flags.

`federation nodes up` writes it (node id, address, process id, certificate,
log); `compare`, `run` and `psi` read addresses from it (`--roster`), and
`federation nodes down` stops exactly the processes it lists. A roster that
names a node the experiment does not list is refused, and so is a process
id that is no longer a `federation node` process (the pid was reused).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from federation.errors import ConfigError
from federation.experiments.launcher import NodeProcess


@dataclass(frozen=True)
class RosterEntry:
    node_id: str
    address: str
    pid: int
    log: str


def write_roster(path: Path, experiment: Path, nodes: Sequence[NodeProcess]) -> None:
    entries = [RosterEntry(n.node_id, n.address, n.process.pid, str(n.log_file)) for n in nodes]
    body = {"experiment": str(experiment.resolve()), "nodes": [asdict(e) for e in entries]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")


def read_roster(path: Path, *, known: Sequence[str] | None = None) -> list[RosterEntry]:
    """The roster's entries; with `known`, a node the experiment does not list is refused."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        entries = [RosterEntry(str(e["node_id"]), str(e["address"]), int(e["pid"]), str(e["log"])) for e in body["nodes"]]
    except FileNotFoundError:
        raise ConfigError(str(path), ["no roster here: start the nodes with `federation nodes up EXPERIMENT`"]) from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(str(path), [f"not a roster: {error}"]) from None
    if known is not None:
        unknown = sorted({e.node_id for e in entries} - set(known))
        if unknown:
            raise ConfigError(str(path), [f"the roster names {unknown}, which are not nodes of this experiment"])
    return entries


def addresses(entries: Sequence[RosterEntry]) -> dict[str, str]:
    return {e.node_id: e.address for e in entries}


def _is_node(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"federation" in command and b"node" in command


def stop_roster(entries: Sequence[RosterEntry], *, timeout: float = 10.0) -> dict[str, str]:
    """SIGTERM each listed node process once, SIGKILL what outlives `timeout`; what happened to each node."""
    running = {e.pid for e in entries if _is_node(e.pid)}
    for pid in running:
        os.kill(pid, signal.SIGTERM)
    left, deadline = set(running), time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        left = {pid for pid in left if not _ended(pid)}
        time.sleep(0.1)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return {e.node_id: "was not running" if e.pid not in running else "killed" if e.pid in left else "stopped" for e in entries}


def _ended(pid: int) -> bool:
    """True once `pid` is gone or a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1][:1]
    except OSError:
        return True
    return state == "Z" or not _is_node(pid)
