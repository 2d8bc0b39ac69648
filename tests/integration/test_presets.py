"""The example city under the policy presets, with real node processes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fedkit import PARTIES, REPO, City, federation_cli, write_experiment

from federation.experiments.launcher import start_nodes, stop_nodes
from federation.node.audit import verify

pytestmark = pytest.mark.slow


def test_strict_preset_refuses_the_central_pool_everywhere_and_trains_privately(fresh_city: City) -> None:
    strict = REPO / "policies" / "presets" / "strict.toml"
    nodes = start_nodes({p: fresh_city.manifest(p) for p in PARTIES}, fresh_city.root / "node-logs", policy=strict)
    try:
        experiment = write_experiment(fresh_city, PARTIES, rounds=2)
        args = [a for n in nodes for a in ("--address", f"{n.node_id}={n.address}")]
        result = federation_cli("compare", str(experiment), *args, cwd=fresh_city.root)
    finally:
        stop_nodes(nodes)
    assert result.returncode == 0, result.stderr
    run_dir = next((fresh_city.root / "runs").iterdir())
    results = json.loads((run_dir / "results.json").read_text())
    by_name = {t["name"]: t for t in results["topologies"]}
    pool = by_name["central-pool"]
    assert not pool["started"] and pool["raw_records_out"] == {}
    assert set(pool["refusals"]) == set(PARTIES)
    assert all(any("'raw'" in r for r in reasons) for reasons in pool["refusals"].values())
    fedavg = by_name["federated (fedavg)"]
    assert fedavg["started"] and fedavg["secure_aggregation"]
    assert fedavg["evaluation"] == "secure-sum" and list(fedavg["per_node"]) == ["(cohort, summed securely)"]
    assert fedavg["privacy"]["noise_multiplier"] > 0 and fedavg["privacy"]["clip"] == 1.0
    assert all(0 < v["epsilon_spent"] <= v["epsilon_budget"] for v in results["privacy_spent"].values())
    report = (run_dir / "report.md").read_text()
    assert "## Privacy spent" in report and "releases at most 'masked-update'" in report
    assert "evaluation summed securely over the cohort" in report and "## Whom these guarantees protect against" in report
    for party in PARTIES:
        assert verify(fresh_city.root / ".federation" / "state" / party).intact
    tamper_with_a_copy_of(fresh_city.root / ".federation" / "state" / PARTIES[0], fresh_city.root / "copies")


def tamper_with_a_copy_of(state: Path, copies: Path) -> None:
    """A modified, a deleted and a reordered entry in copies of a real node's log are all found."""

    def copy(name: str) -> tuple[Path, list[str]]:
        target = copies / name
        shutil.copytree(state, target)
        return target, (target / "audit.jsonl").read_text().splitlines(keepends=True)

    edited, lines = copy("edited")
    entry = json.loads(lines[3])
    entry["decision"] = "deny" if entry["decision"] == "allow" else "allow"
    lines[3] = json.dumps(entry, sort_keys=True) + "\n"
    (edited / "audit.jsonl").write_text("".join(lines))
    deleted, lines = copy("deleted")
    (deleted / "audit.jsonl").write_text("".join(lines[:5] + lines[6:]))
    reordered, lines = copy("reordered")
    lines[7], lines[8] = lines[8], lines[7]
    (reordered / "audit.jsonl").write_text("".join(lines))
    for directory, where in ((edited, "line 4"), (deleted, "line 6"), (reordered, "line 8")):
        result = verify(directory)
        assert not result.intact and where in result.problems[0], (directory.name, result.problems)


def test_open_preset_lets_the_central_pool_take_every_row(fresh_city: City) -> None:
    open_preset = REPO / "policies" / "presets" / "open.toml"
    nodes = start_nodes({p: fresh_city.manifest(p) for p in PARTIES[:3]}, fresh_city.root / "node-logs", policy=open_preset)
    try:
        experiment = write_experiment(fresh_city, PARTIES[:3], rounds=1)
        args = [a for n in nodes for a in ("--address", f"{n.node_id}={n.address}")]
        result = federation_cli("compare", str(experiment), *args, cwd=fresh_city.root)
    finally:
        stop_nodes(nodes)
    assert result.returncode == 0, result.stderr
    results = json.loads((next((fresh_city.root / "runs").iterdir()) / "results.json").read_text())
    pool = next(t for t in results["topologies"] if t["name"] == "central-pool")
    assert pool["started"] and set(pool["participants"]) == set(PARTIES[:3]) and not pool["refusals"]
