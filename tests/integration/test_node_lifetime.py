"""A run's node process holds its state directory alone, and only for as long as the run lives."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fedkit import City, federation_cli

from federation.node.manifest import load_manifest
from federation.node.state_lock import StateLock

pytestmark = pytest.mark.slow

# What `federation demo` does with its nodes, without the comparison in between.
PARENT = """
import sys, time
from pathlib import Path
from federation.experiments.launcher import exit_on_signals, start_nodes, stop_nodes

with exit_on_signals():
    nodes = start_nodes({sys.argv[1]: Path(sys.argv[2])}, Path(sys.argv[3]))
    try:
        print(nodes[0].process.pid, flush=True)
        time.sleep(300)
    finally:
        stop_nodes(nodes)
"""


def test_a_second_node_on_a_runs_state_directory_refuses_and_sigterm_to_the_run_frees_it(fresh_city: City) -> None:
    party = "north-district"
    manifest = fresh_city.manifest(party)
    state = load_manifest(manifest).state_dir.resolve()
    run = subprocess.Popen(
        [sys.executable, "-c", PARENT, party, str(manifest), str(fresh_city.root / "node-logs")],
        cwd=fresh_city.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stdout is not None
        line = run.stdout.readline().strip()
        assert line.isdigit(), run.communicate(timeout=30)[1]
        node_pid = int(line)

        second = federation_cli("node", "serve", str(manifest), cwd=fresh_city.root)
        assert second.returncode == 2
        message = " ".join(second.stderr.split())  # rich may wrap the long line
        assert str(state) in message and f"another node process (pid {node_pid}) already uses this state directory" in message

        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=30) == 128 + signal.SIGTERM  # an orderly exit through `finally`
        assert not Path(f"/proc/{node_pid}").exists()  # stopped and reaped by its parent
        StateLock.acquire(state).release()  # and the directory is free again
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
