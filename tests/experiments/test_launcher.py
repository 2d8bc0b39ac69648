"""The launcher with stand-in node commands: start-up reports, the scaled limit, signals that still stop the nodes.

The stand-ins are tiny Python processes that behave like a node (write the
address file, or print and hang, or exit), so no federation node is loaded.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from federation.errors import NodeUnavailable
from federation.experiments.launcher import (
    NodeLaunch,
    exit_on_signals,
    serve_command,
    start_nodes,
    startup_timeout,
    stop_nodes,
)

PID = "import federation.lifetime; federation.lifetime.die_with_parent(); import os, pathlib, sys, time; pathlib.Path(sys.argv[1] + '.pid').write_text(str(os.getpid())); "
SERVES = PID + "pathlib.Path(sys.argv[1]).write_text('127.0.0.1:1'); time.sleep(60)"
SILENT = PID + "time.sleep(60)"
TALKS = PID + "print('starting: loading manifest nodes/slow.toml ...', flush=True); time.sleep(60)"
FAILS = "import sys; print('no such data file', flush=True); sys.exit(3)"


def stand_ins(scripts: dict[str, str]) -> Callable[[NodeLaunch], list[str]]:
    return lambda launch: [sys.executable, "-c", scripts[launch.node_id], str(launch.address_file)]


def running(pid_file: Path) -> bool:
    """Whether the stand-in that wrote this pid file still exists (stop_nodes reaps, so no zombie is left)."""
    return Path(f"/proc/{pid_file.read_text()}").exists()


def manifests(*names: str) -> dict[str, Path]:
    return {name: Path(f"nodes/{name}.toml") for name in names}


def test_a_late_node_is_reported_with_its_state_and_the_end_of_its_log(tmp_path: Path) -> None:
    command = stand_ins({"fast": SERVES, "silent": SILENT, "talks": TALKS})
    with pytest.raises(NodeUnavailable) as late:
        start_nodes(manifests("fast", "silent", "talks"), tmp_path, timeout=2.0, command=command)
    report = late.value.public
    assert "2 node(s) did not start within 2s (elapsed " in report and "--startup-timeout" in report
    silent, talks = report.split("node silent:")[1].split("node talks:")
    assert "still running" in silent and "the node printed nothing yet (still importing?)" in silent
    assert "still running" in talks and "starting: loading manifest nodes/slow.toml" in talks
    assert "node fast" not in report
    assert not any(running(tmp_path / f"{name}.address.pid") for name in ("fast", "silent", "talks"))  # all stopped


def test_a_node_that_exits_while_starting_is_named_at_once_with_its_log(tmp_path: Path) -> None:
    command = stand_ins({"fast": SERVES, "fails": FAILS, "silent": SILENT})
    with pytest.raises(NodeUnavailable, match="node fails exited with code 3") as failed:
        start_nodes(manifests("fast", "fails", "silent"), tmp_path, timeout=60, command=command)
    assert "no such data file" in failed.value.public


def test_nodes_that_serve_are_returned_with_their_addresses(tmp_path: Path) -> None:
    nodes = start_nodes(manifests("a", "b"), tmp_path, timeout=30, command=stand_ins({"a": SERVES, "b": SERVES}))
    try:
        assert [(n.node_id, n.address) for n in nodes] == [("a", "127.0.0.1:1"), ("b", "127.0.0.1:1")]
    finally:
        stop_nodes(nodes)
    assert all(n.process.returncode == -signal.SIGTERM for n in nodes)


def test_the_default_limit_grows_with_the_number_of_nodes() -> None:
    assert startup_timeout(1) < startup_timeout(5) and startup_timeout(2) == 80.0


def test_the_serve_command_passes_only_the_options_given(tmp_path: Path) -> None:
    plain = serve_command(NodeLaunch("n", Path("n.toml"), tmp_path / "n.address"))
    assert plain[1:5] == ["-m", "federation", "node", "serve"] and "--state" not in plain and "--pki" not in plain
    full = serve_command(NodeLaunch("n", Path("n.toml"), tmp_path / "a", pki_dir=Path("pki"), state_dir=Path("s")))
    assert full[full.index("--pki") + 1] == "pki" and full[full.index("--state") + 1] == "s"


def test_sigterm_while_nodes_run_stops_them_and_exits_through_finally(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    nodes = start_nodes(manifests("a"), tmp_path, timeout=30, command=stand_ins({"a": SERVES}))
    try:
        with pytest.raises(SystemExit) as exited, exit_on_signals():
            signal.raise_signal(signal.SIGTERM)
        assert exited.value.code == 128 + signal.SIGTERM
        assert nodes[0].process.wait(timeout=10) == -signal.SIGTERM  # the handler signalled it, not stop_nodes
    finally:
        stop_nodes(nodes)
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_repeated_signal_does_not_interrupt_the_clean_up() -> None:
    with pytest.raises(SystemExit), exit_on_signals():
        try:
            signal.raise_signal(signal.SIGHUP)
        finally:
            signal.raise_signal(signal.SIGHUP)  # ignored: a second SystemExit here would cut stop_nodes short


KILLED_PARENT = f"""
import sys, time
from pathlib import Path
from federation.experiments.launcher import start_nodes

serves = {SERVES!r}
nodes = start_nodes(
    {{"a": Path("a.toml"), "b": Path("b.toml")}},
    Path(sys.argv[1]),
    timeout=30,
    command=lambda launch: [sys.executable, "-c", serves, str(launch.address_file)],
)
print(" ".join(str(n.process.pid) for n in nodes), flush=True)
time.sleep(60)
"""


def gone(pid: int, *, within: float) -> bool:
    """Whether the process is gone (or a zombie nobody reaped yet) within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_nodes_die_with_a_parent_killed_by_sigkill(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", KILLED_PARENT, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 2 and not any(gone(pid, within=0.2) for pid in pids)
    finally:
        parent.kill()  # no handler, no finally: only the kernel can stop the nodes now
        parent.wait()
    assert all(gone(pid, within=10) for pid in pids)
