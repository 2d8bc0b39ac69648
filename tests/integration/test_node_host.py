"""Several nodes in one host process stay separate parties (`federation node host`).

Two nodes of the SYNTHETIC two-register city are started in one process.
They answer on their own ports with their own certificates, find exactly
the plaintext join between them, and each keeps its own audit log. One
node's policy, edited to refuse, refuses alone; two nodes on one state
directory are refused as two processes would be; when the host dies, both
of its nodes are gone and the launcher says so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fedkit import PURPOSE, City, federation_cli, load_script, serve

from federation.coordinator.client import NodeClient
from federation.coordinator.psi import run_psi
from federation.errors import NodeUnavailable, PolicyDenied
from federation.experiments.launcher import prepare_identities, start_nodes, stop_nodes
from federation.experiments.psi_config import load_psi_experiment
from federation.node.audit_chain import read_entries
from federation.node.manifest import load_manifest
from federation.node.psi_handlers import shared_keys
from federation.task import RunContext
from federation.transport.tls import Identity

pytestmark = pytest.mark.slow
GENERATOR = load_script(Path(__file__).resolve().parents[2] / "examples" / "psi_pair" / "generate.py", "psi_pair_host")
RECEIVER, SENDER = GENERATOR.RECEIVER, GENERATOR.SENDER


def test_two_nodes_in_one_process_are_two_parties_and_die_together(tmp_path: Path) -> None:
    GENERATOR.generate(tmp_path, keys=600, overlap=0.5, seed=4)
    experiment = load_psi_experiment(tmp_path / "psi.toml")
    manifests = {n: m for n, _, m in experiment.nodes if m is not None}
    prepare_identities(experiment.pki_dir, manifests, experiment.coordinator)
    nodes = start_nodes(manifests, tmp_path / "logs", per_process=2)
    try:
        assert len({n.process.pid for n in nodes}) == 1 and len({n.address for n in nodes}) == 2
        identity = Identity.in_directory(experiment.pki_dir, experiment.coordinator)
        clients = {n.node_id: NodeClient(n.node_id, n.address, identity, timeout=60) for n in nodes}
        described = {name: c.describe(RunContext("host-describe", "register-match")).node_id for name, c in clients.items()}
        assert described == {RECEIVER: RECEIVER, SENDER: SENDER}  # each port answers as its own party
        outcome = run_psi(clients, experiment.new_terms(), purpose="register-match")
        receiver_state = load_manifest(manifests[RECEIVER]).state_dir
        assert outcome.count == 300 and len(shared_keys(receiver_state, outcome.terms.run_id) or []) == 300
        for name, manifest in manifests.items():  # each keeps its own chain, naming only itself
            entries = [e for e in read_entries(load_manifest(manifest).state_dir) if e["run_id"] == outcome.terms.run_id]
            assert entries and all(e["rpc"].startswith("Psi") for e in entries), name
        for client in clients.values():
            client.close()
    finally:
        stop_nodes(nodes)
    assert all(n.process.poll() is not None for n in nodes)

    policy = load_manifest(manifests[SENDER]).policy_path
    refusing = tmp_path / "refusing.toml"
    refusing.write_text(policy.read_text().replace('purposes = ["register-match"]', 'purposes = ["something-else"]'))
    nodes = start_nodes(manifests, tmp_path / "logs-2", per_process=2, policies={SENDER: refusing})
    try:
        identity = Identity.in_directory(experiment.pki_dir, experiment.coordinator)
        clients = {n.node_id: NodeClient(n.node_id, n.address, identity, timeout=60) for n in nodes}
        with pytest.raises(PolicyDenied) as refused:
            run_psi(clients, experiment.new_terms(), purpose="register-match")
        assert f"{SENDER}:" in str(refused.value) and f"{RECEIVER}:" not in str(refused.value)  # one node's policy, alone
        for client in clients.values():
            client.close()
    finally:
        stop_nodes(nodes)

    shared = tmp_path / "one-state"
    for manifest in manifests.values():  # both nodes of one host pointed at one state directory
        text = manifest.read_text()
        manifest.write_text(text[: text.index("[state]")] + f'[state]\ndir = "{shared}"\n')
    with pytest.raises(NodeUnavailable, match="would share state directory"):
        start_nodes(manifests, tmp_path / "logs-clash", per_process=2, timeout=120)


def test_nodes_up_leaves_them_running_for_a_roster_and_nodes_down_stops_exactly_them(tmp_path: Path) -> None:
    GENERATOR.generate(tmp_path, keys=500, overlap=0.4, seed=5)
    up = federation_cli("nodes", "up", "psi.toml", "--per-process", "2", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    roster = tmp_path / "runs" / "nodes" / "roster.json"
    pids = {e["pid"] for e in json.loads(roster.read_text())["nodes"]}
    assert len(pids) == 1 and not gone(next(iter(pids)))  # the command returned, the host serves on
    try:
        psi = federation_cli("psi", "psi.toml", "--roster", str(roster), cwd=tmp_path)
        assert psi.returncode == 0, psi.stderr
        assert "intersection size: 200" in psi.stdout
        stranger = json.loads(roster.read_text())
        stranger["nodes"].append({**stranger["nodes"][0], "node_id": "ghost-bureau"})
        (tmp_path / "stranger.json").write_text(json.dumps(stranger))
        refused = federation_cli("psi", "psi.toml", "--roster", "stranger.json", cwd=tmp_path)
        assert refused.returncode == 2 and "'ghost-bureau', which is not a node of this experiment" in refused.stderr
    finally:
        down = federation_cli("nodes", "down", str(roster), cwd=tmp_path)
    assert down.returncode == 0 and down.stdout.count("stopped") == 2, down.stdout + down.stderr
    assert not roster.exists() and all(gone(pid) for pid in pids)


def gone(pid: int) -> bool:
    """Ended: no such process, or a zombie its new parent has not reaped yet (the command that started it has exited)."""
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(") ", 1)[-1].startswith("Z")


def test_a_host_that_dies_takes_only_its_own_nodes_and_the_comparison_goes_on(tmp_path: Path) -> None:
    from federation.experiments.compare import compare
    from federation.experiments.config import load_experiment

    load_script(Path(__file__).resolve().parents[2] / "examples" / "many_parties" / "generate.py", "many_host").generate(
        tmp_path, parties=6, seed=2
    )
    experiment = load_experiment(tmp_path / "experiment.toml")
    manifests = {n: m for n, _, m in experiment.nodes if m is not None}
    prepare_identities(experiment.pki_dir, manifests, experiment.coordinator)
    nodes = start_nodes(manifests, tmp_path / "logs", per_process=3)
    try:
        doomed = nodes[0].process
        lost = {n.node_id for n in nodes if n.process is doomed}
        doomed.kill()
        doomed.wait()
        result = compare(experiment, {n.node_id: n.address for n in nodes}, output_dir=tmp_path / "runs")
    finally:
        stop_nodes(nodes)
    assert set(result.unreachable) == lost and len(lost) == 3
    for topology in result.results:
        assert set(topology.participants) == set(manifests) - lost, topology.name


def test_a_second_node_on_a_port_in_use_refuses_to_start_and_the_first_serves_on(fresh_city: City) -> None:
    first = serve(fresh_city, "north-district")
    try:
        port = first.address.rsplit(":", 1)[1]
        second = federation_cli("node", "serve", str(fresh_city.manifest("hills-district")), "--listen", f"127.0.0.1:{port}",
                                cwd=fresh_city.root)  # fmt: skip
        assert second.returncode == 2 and "already in use" in second.stderr, second.stderr
        with first.client(fresh_city) as client:  # the node already on the port is untouched
            assert client.describe(RunContext("after-clash", PURPOSE)).node_id == "north-district"
    finally:
        first.server.stop(0)
