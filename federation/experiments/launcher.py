"""Starting and stopping real node processes on localhost (demo and integration tests).

Each node is its own `federation node serve` process bound to a free port;
it writes its address to a file once it serves, which is how we learn the
port without racing for it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from federation.errors import NodeUnavailable
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


def start_nodes(
    manifests: dict[str, Path],
    work_dir: Path,
    *,
    pki_dir: Path | None = None,
    policy: Path | None = None,
    policies: dict[str, Path] | None = None,
    state_root: Path | None = None,
    timeout: float = 90.0,
) -> list[NodeProcess]:
    """Start one process per manifest and wait until every node serves."""
    work_dir.mkdir(parents=True, exist_ok=True)
    started: list[NodeProcess] = []
    for node_id, manifest in manifests.items():
        address_file = work_dir / f"{node_id}.address"
        address_file.unlink(missing_ok=True)
        log_file = work_dir / f"{node_id}.log"
        command = [
            sys.executable,
            "-m",
            "federation",
            "node",
            "serve",
            str(manifest),
            "--listen",
            "127.0.0.1:0",
            "--address-file",
            str(address_file),
        ]
        if pki_dir is not None:
            command += ["--pki", str(pki_dir)]
        chosen = (policies or {}).get(node_id, policy)
        if chosen is not None:
            command += ["--policy", str(chosen)]
        if state_root is not None:
            command += ["--state", str(state_root / node_id)]
        with log_file.open("wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        started.append(NodeProcess(node_id, process, address_file, log_file))
    deadline = time.monotonic() + timeout
    try:
        for node in started:
            while not node.address_file.is_file():
                if node.process.poll() is not None:
                    tail = node.log_file.read_text(errors="replace")[-1500:]
                    raise NodeUnavailable(
                        f"node {node.node_id} exited with code {node.process.returncode} while starting:\n{tail}"
                    )
                if time.monotonic() > deadline:
                    raise NodeUnavailable(f"node {node.node_id} did not start within {timeout:.0f}s (log: {node.log_file})")
                time.sleep(0.1)
            node.address = node.address_file.read_text().strip()
    except BaseException:
        stop_nodes(started)
        raise
    return started


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
