"""The same comparison on both engines: our gRPC nodes, and virtual nodes on Flower's Simulation Engine (Ray).

Two copies of one small city (same data, same split seeds): one served by
real gRPC nodes over mutual TLS, one played by `compare --engine
flower-simulation` on two Ray workers. The splits, the refusals and the
local-only results must be identical; the federated and pooled metrics equal
within noise; every virtual node's audit log a whole signed chain.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fedkit import COORDINATOR, SMALL_PARTIES, build_city, serving_in_process, write_experiment

from federation.experiments.compare import compare
from federation.experiments.config import load_experiment
from federation.node.audit_verify import verify
from federation.node.manifest import load_manifest

pytestmark = pytest.mark.slow
REFUSING = "river-district"


def _city(root: Path) -> Path:
    city = build_city(root, scale=0.2)
    path = write_experiment(city, (*SMALL_PARTIES, REFUSING), rounds=3)
    secure = 'strategies = ["fedavg"]\n\n[secure_aggregation]\nmode = "always"'
    text = path.read_text().replace('strategies = ["fedavg", "fedprox"]', secure)
    path.write_text(text.replace('output = "runs"', 'output = "runs"\ntopologies = ["federated", "central-pool", "local-only"]'))
    policy = city.policy(REFUSING)  # this district no longer takes part in enforcement models
    policy.write_text(policy.read_text().replace('purposes = ["pollution-enforcement"]', 'purposes = ["official-statistics"]'))
    return path


def test_both_engines_give_the_same_splits_refusals_and_results(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from federation.flower.simulation import compare_simulated

    grpc_path, flower_path = _city(tmp_path / "grpc"), _city(tmp_path / "flower")
    on_grpc = load_experiment(grpc_path)
    manifests = {n: m for n, _, m in on_grpc.nodes if m is not None}
    with serving_in_process(manifests, on_grpc.pki_dir, COORDINATOR) as clients:
        ours = compare(on_grpc, {n: c.address for n, c in clients.items()}).to_json()
    on_flower = load_experiment(flower_path)
    theirs = compare_simulated(on_flower, workers=2).to_json()

    assert ours["unreachable"] == theirs["unreachable"]  # the refusing district refuses even to describe itself
    assert (
        "refused by policy" in ours["unreachable"][REFUSING]
        and "purpose 'pollution-enforcement'" in ours["unreachable"][REFUSING]
    )
    assert ours["scaling_refusals"] == theirs["scaling_refusals"]
    by_name = {t["name"]: t for t in theirs["topologies"]}
    assert [t["name"] for t in ours["topologies"]] == list(by_name)
    for mine in ours["topologies"]:
        other = by_name[mine["name"]]
        assert mine["refusals"] == other["refusals"], mine["name"]
        assert mine["participants"] == other["participants"] == list(SMALL_PARTIES)
        for node in SMALL_PARTIES:  # the same test rows on each node
            assert mine["per_node"][node]["test_records"] == other["per_node"][node]["test_records"]
        gap = abs(mine["overall"]["auc"] - other["overall"]["auc"])
        assert gap <= (0.0 if mine["kind"] == "local-only" else 0.02), (mine["name"], gap)
        assert mine["raw_records_out"] == other["raw_records_out"]
    assert by_name["federated (fedavg)"]["secure_aggregation"]
    for node in SMALL_PARTIES:
        state = load_manifest(flower_path.parent / "nodes" / f"{node}.toml").state_dir
        checked = verify(state, ca=on_flower.pki_dir / "ca.crt")
        assert checked.problems == () and checked.entries > 10, (node, checked)


def test_a_missing_simulation_extra_is_named_with_its_install_command(tmp_path: Path) -> None:
    blocked = "import sys; sys.modules['ray'] = None; from federation.cli import main; sys.argv[0] = 'federation'; main()"
    experiment = tmp_path / "experiment.toml"
    experiment.write_text("")  # never read: the engine is checked first
    done = subprocess.run(
        [sys.executable, "-c", blocked, "compare", str(experiment), "--engine", "flower-simulation"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 2, done.stderr
    assert "needs Ray, which is not installed" in done.stderr and "pip install 'flwr[simulation]==1.42.0'" in done.stderr


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--engine", "flower"], "'flower' is not an engine; choose one of ['grpc', 'flower-simulation']"),
        (["--workers", "2"], "--workers and --ray-address go with --engine flower-simulation"),
        (["--engine", "flower-simulation", "--seeds", "3"], "--seeds runs on the gRPC engine only"),
    ],
)
def test_engine_flags_that_do_not_fit_are_refused_before_anything_starts(tmp_path: Path, flags: list[str], said: str) -> None:
    pytest.importorskip("ray")
    experiment = tmp_path / "experiment.toml"
    experiment.write_text("")  # never read: the flags are checked first
    done = subprocess.run(
        [sys.executable, "-m", "federation", "compare", str(experiment), *flags],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 2 and said in done.stderr, done.stderr


def test_a_sweep_runs_its_points_at_once_each_with_nodes_of_its_own_and_resumes(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    city = build_city(tmp_path, scale=0.1)
    path = write_experiment(city, SMALL_PARTIES, rounds=1)
    path.write_text(path.read_text().replace('output = "runs"', 'output = "runs"\ntopologies = ["federated", "local-only"]'))
    out = tmp_path / "sweep"
    args = ["sweep", str(path), "--vary", "policies.*.release=none,raw", "--output", str(out), "--engine", "flower-simulation"]
    done = subprocess.run([sys.executable, "-m", "federation", *args], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = {
        json.loads(p.read_text())["combination"]["policies.*.release"]: json.loads(p.read_text())
        for p in out.glob("point-*/point.json")
    }
    assert set(saved) == {"none", "raw"}
    assert "policies.*.release=none" in (out / "report.md").read_text().split("## Refused or failed combinations")[1]
    shared = {t["name"]: t for t in saved["raw"]["results"]["topologies"]}
    assert shared["federated (fedavg)"]["participants"] == list(SMALL_PARTIES)
    for index in ("000", "001"):  # every point's nodes kept state of their own: no budget or run carried between what-ifs
        for node in SMALL_PARTIES:
            assert verify(out / f"point-{index}" / "state" / node, ca=city.pki / "ca.crt").problems == ()
    before = {p: p.stat().st_mtime for p in out.glob("point-*/point.json")}
    again = subprocess.run([sys.executable, "-m", "federation", *args], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime for p in out.glob("point-*/point.json")} == before  # both points reused
