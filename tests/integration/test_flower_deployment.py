"""`flwr run` on Flower's Deployment Engine: a SuperLink, one SuperNode per district, our apps.

Each SuperNode names its own district's manifest in its node config, as a
department's IT staff would; the Deployment Engine starts a fresh ClientApp
process for every message, so nothing of a node survives between messages
but its files and its Flower context.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fedkit import COORDINATOR, REPO, SMALL_PARTIES, build_city, write_experiment

from federation.node.audit_verify import verify
from federation.node.manifest import load_manifest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port}")


class Processes:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.started = env, logs, list[subprocess.Popen[bytes]]()

    def start(self, name: str, *argv: str) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.started.append(subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def stop(self) -> None:
        for process in self.started:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for process in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[Path, Processes, dict[str, str], int]]:
    pytest.importorskip("ray")  # the simulation extra brings what flwr's runtime needs too
    home = tmp_path / "flwr-home"
    home.mkdir()
    port = _free_port()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "here"\n\n[superlink.here]\naddress = "127.0.0.1:{port}"\ninsecure = true\n'
    )
    env = {**os.environ, "FLWR_HOME": str(home), "FLWR_TELEMETRY_ENABLED": "0", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    processes = Processes(env, tmp_path)
    try:
        processes.start("superlink", str(BIN / "flower-superlink"), "--insecure", "--port", str(port))
        _wait_listening(port)
        yield tmp_path, processes, env, port
    finally:
        processes.stop()


def test_flwr_run_compares_over_supernodes_that_each_serve_their_own_district(
    deployment: tuple[Path, Processes, dict[str, str], int],
) -> None:
    root, processes, env, port = deployment
    city = build_city(root / "city", scale=0.1)
    path = write_experiment(city, SMALL_PARTIES, rounds=1)
    plain = 'strategies = ["fedavg"]\n\n[secure_aggregation]\nmode = "never"'  # secure rounds on fresh workers: tests/flower
    text = path.read_text().replace('strategies = ["fedavg", "fedprox"]', plain)
    path.write_text(text.replace('output = "runs"', 'output = "runs"\ntopologies = ["federated"]'))
    for party in SMALL_PARTIES:
        config = f"manifest='{city.manifest(party)}' coordinator='{COORDINATOR}'"
        processes.start(party, str(BIN / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{port}",
                        "--port", str(_free_port()), "--node-config", config)  # fmt: skip
    app = shutil.copytree(REPO / "examples" / "flower_deployment", root / "app")
    done = subprocess.run(
        [str(BIN / "flwr"), "run", str(app), "here", "--run-config", f'experiment="{path}"', "--stream"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    results = list((city.root / "runs").glob("*/results.json"))
    assert len(results) == 1, done.stdout[-3000:] + done.stderr[-3000:]
    federated = json.loads(results[0].read_text())["topologies"][0]
    assert federated["participants"] == list(SMALL_PARTIES) and not federated["failures"]
    assert federated["rounds"] == 1 and 0.0 < federated["overall"]["auc"] < 1.0
    assert (results[0].parent / "report.md").is_file()
    for party in SMALL_PARTIES:  # each SuperNode's node kept its own whole, signed audit log
        checked = verify(load_manifest(city.manifest(party)).state_dir, ca=city.pki / "ca.crt")
        assert checked.problems == () and checked.entries >= 4, (party, checked)
