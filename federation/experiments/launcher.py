"""Starting and stopping real node processes on localhost (demo, sweep and integration tests).

Each node is its own `federation node serve` process bound to a free port;
it writes its address to a file once it serves, which is how we learn the
port without racing for it. Node processes belong to the run that started
them: they die with it however it ends (see `exit_on_signals` and
`_die_with_parent`), so a stopped sweep leaves no orphans holding ports and
state directories.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from federation.errors import NodeUnavailable
from federation.lifetime import PARENT_ENV
from federation.node.manifest import load_manifest
from federation.transport.tls import ensure_identities, write_pins


@dataclass
class NodeProcess:
    node_id: str
    process: subprocess.Popen[bytes]
    address_file: Path
    log_file: Path
    address: str = ""


def prepare_identities(pki_dir: Path, manifests: dict[str, Path], coordinator: str) -> None:
    """Certificates for every node and the coordinator, and each pinned node's pin file.

    On one machine the demo plays every department's IT staff: it pins the
    certificates of exactly the experiment's nodes (never the coordinator's),
    as each department would after exchanging fingerprints out of band.
    """
    ensure_identities(pki_dir, [*manifests, coordinator])
    for path in manifests.values():
        pins = load_manifest(path).pins_path
        if pins is not None:
            write_pins(pki_dir, list(manifests), path=pins, recipients=[coordinator])


@dataclass(frozen=True)
class NodeLaunch:
    """What one node process is started with; a `CommandFactory` turns it into argv."""

    node_id: str
    manifest: Path
    address_file: Path
    pki_dir: Path | None = None
    policy: Path | None = None
    state_dir: Path | None = None


CommandFactory = Callable[[NodeLaunch], list[str]]


def host_command(spec: Path) -> list[str]:
    """`federation node host` for a spec of several nodes, with this interpreter."""
    return [sys.executable, "-m", "federation", "node", "host", str(spec)]


def serve_command(launch: NodeLaunch) -> list[str]:
    """`federation node serve` for this launch, with this interpreter."""
    command = [sys.executable, "-m", "federation", "node", "serve", str(launch.manifest), "--listen", "127.0.0.1:0"]
    command += ["--address-file", str(launch.address_file)]
    for option, value in (("--pki", launch.pki_dir), ("--policy", launch.policy), ("--state", launch.state_dir)):
        if value is not None:
            command += [option, str(value)]
    return command


def spread(nodes: int) -> int:
    """Nodes per process that use every core once: torch and numpy threads are held to one per process."""
    return max(1, -(-nodes // (os.cpu_count() or 1)))


def startup_timeout(nodes: int) -> float:
    """Default start-up limit: imports run one after another on a small machine, so it grows per node."""
    return 60.0 + 10.0 * nodes


def start_nodes(
    manifests: dict[str, Path],
    work_dir: Path,
    *,
    pki_dir: Path | None = None,
    policy: Path | None = None,
    policies: dict[str, Path] | None = None,
    state_root: Path | None = None,
    timeout: float | None = None,
    command: CommandFactory = serve_command,
    per_process: int = 1,
    detached: bool = False,
    on_ready: Callable[[int, int], None] | None = None,
) -> list[NodeProcess]:
    """Start the nodes, `per_process` of them in each process, and wait until every node serves.

    One node per process runs `command` (`federation node serve`); more run
    `federation node host` over a spec of their launches, each node still its
    own party (see `node.serve.host_nodes`). `timeout` defaults to
    `startup_timeout` of the number of processes. A node that exits or is
    late stops all of them, with a report of what each was doing. `detached`
    nodes outlive this process (`federation nodes up`): their own session,
    no signal when this process dies. `on_ready(serving, total)` is called
    as nodes come up (a progress bar).
    """
    if per_process < 1:
        raise ValueError(f"per_process must be at least 1, got {per_process}")
    names = list(manifests)
    groups = [names[i : i + per_process] for i in range(0, len(names), per_process)]
    limit = startup_timeout(len(groups)) if timeout is None else timeout
    work_dir.mkdir(parents=True, exist_ok=True)
    started: list[NodeProcess] = []
    began = time.monotonic()
    try:
        for index, group in enumerate(groups):
            launches = []
            for node_id in group:
                address_file = work_dir / f"{node_id}.address"
                address_file.unlink(missing_ok=True)
                launches.append(
                    NodeLaunch(
                        node_id,
                        manifests[node_id],
                        address_file,
                        pki_dir=pki_dir,
                        policy=(policies or {}).get(node_id, policy),
                        state_dir=state_root / node_id if state_root is not None else None,
                    )
                )
            log_file = work_dir / (f"{group[0]}.log" if per_process == 1 else f"host-{index}.log")
            argv = (
                command(launches[0]) if per_process == 1 else host_command(_host_spec(work_dir / f"host-{index}.json", launches))
            )
            with log_file.open("wb") as log:
                process = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={"OMP_NUM_THREADS": "1", **os.environ, "PYTHONUNBUFFERED": "1", **({} if detached else _parent_env())},
                    start_new_session=detached,
                )
            if not detached:
                _running[process.pid] = process
            started += [NodeProcess(launch.node_id, process, launch.address_file, log_file) for launch in launches]
        _wait_until_serving(started, began=began, limit=limit, on_ready=on_ready)
    except BaseException:
        stop_nodes(started)
        raise
    return started


def _host_spec(path: Path, launches: list[NodeLaunch]) -> Path:
    """The JSON list `federation node host` reads: each launch's fields, paths as text."""
    fields = ("node_id", "manifest", "address_file", "pki_dir", "policy", "state_dir")
    items = [{f: (None if getattr(launch, f) is None else str(getattr(launch, f))) for f in fields} for launch in launches]
    path.write_text(json.dumps(items, indent=1))
    return path


def _wait_until_serving(
    nodes: list[NodeProcess], *, began: float, limit: float, on_ready: Callable[[int, int], None] | None = None
) -> None:
    """Poll every node at once, so a node that crashed is reported without waiting for the others."""
    pending = list(nodes)
    while pending:
        for node in list(pending):
            if node.address_file.is_file():
                node.address = node.address_file.read_text().strip()
                pending.remove(node)
                if on_ready is not None:
                    on_ready(len(nodes) - len(pending), len(nodes))
            elif node.process.poll() is not None:
                raise NodeUnavailable(
                    f"node {node.node_id} exited with code {node.process.returncode} while starting "
                    f"(log: {node.log_file}):\n{_log_tail(node.log_file, empty='the node printed nothing before it exited')}"
                )
        elapsed = time.monotonic() - began
        if pending and elapsed > limit:
            raise NodeUnavailable(startup_report(pending, elapsed=elapsed, limit=limit))
        if pending:
            time.sleep(0.1)


def startup_report(late: list[NodeProcess], *, elapsed: float, limit: float) -> str:
    """What each late node was doing: alive or not, and the end of its log."""
    lines = [
        f"{len(late)} node(s) did not start within {limit:.0f}s (elapsed {elapsed:.1f}s); "
        "raise the limit with --startup-timeout SECONDS if the machine is just slow"
    ]
    for node in late:
        code = node.process.poll()
        state = f"process {node.process.pid} still running" if code is None else f"process exited with code {code}"
        lines.append(f"node {node.node_id}: {state}; log {node.log_file}:")
        lines.append(_log_tail(node.log_file))
    return "\n".join(lines)


def _log_tail(
    path: Path, *, lines: int = 12, width: int = 300, empty: str = "the node printed nothing yet (still importing?)"
) -> str:
    """The last lines of a node's log, indented; an empty log is said to be empty, not shown as a blank."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        text = ""
    tail = [line[:width] for line in text.splitlines()[-lines:] if line.strip()]
    if not tail:
        return f"    {empty}"
    return "\n".join(f"    {line}" for line in tail)


def _parent_env() -> dict[str, str]:
    """Ask the child to get SIGTERM when this thread dies (`federation.lifetime`, Linux PR_SET_PDEATHSIG).

    This covers the exits no `finally` sees: SIGKILL, a crash, the OOM killer.
    The kernel signals on the death of the *thread* that started the child, so
    it is asked only from the main thread; elsewhere a finished worker thread
    would take the nodes with it.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {PARENT_ENV: str(os.getpid())}


_running: dict[int, subprocess.Popen[bytes]] = {}  # started and not yet reaped by stop_nodes


def _terminate_running() -> None:
    """SIGTERM every node this process started and has not stopped; safe in a signal handler."""
    for pid, process in list(_running.items()):
        if process.returncode is None:  # not reaped, so the pid is still our child's
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


@contextmanager
def exit_on_signals(signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """While nodes run, turn SIGTERM and SIGHUP into SystemExit so `finally: stop_nodes(...)` runs.

    Their default action ends the process at once, skipping every `finally`,
    which is how a stopped sweep used to leave its nodes behind. The nodes get
    SIGTERM at once; a repeated signal is ignored so it cannot cut the clean-up
    short. Signal handlers can only be set from the main thread; elsewhere
    this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in signals}

    def _exit(signum: int, frame: FrameType | None) -> None:
        for s in signals:
            signal.signal(s, signal.SIG_IGN)
        _terminate_running()  # first, so calls in flight to the nodes fail now instead of finishing their round
        raise SystemExit(128 + signum)

    for s in signals:
        signal.signal(s, _exit)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def stop_nodes(nodes: list[NodeProcess], *, timeout: float = 10.0) -> None:
    """SIGTERM every node, then SIGKILL whatever has not stopped."""
    for node in nodes:
        if node.process.poll() is None:
            node.process.send_signal(signal.SIGTERM)
    for node in nodes:
        try:
            node.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait()
        _running.pop(node.process.pid, None)
