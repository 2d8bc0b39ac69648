"""The whole path as a user runs it: node processes, the CLI, files on disk."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from fedkit import PARTIES, City, federation_cli, write_experiment

from federation.experiments.launcher import NodeProcess, start_nodes, stop_nodes

pytestmark = pytest.mark.slow


@pytest.fixture()
def running(fresh_city: City) -> tuple[City, list[NodeProcess]]:
    nodes = start_nodes({p: fresh_city.manifest(p) for p in PARTIES}, fresh_city.root / "node-logs")
    yield fresh_city, nodes
    stop_nodes(nodes)


def test_compare_runs_three_topologies_over_node_processes(running: tuple[City, list[NodeProcess]]) -> None:
    city, nodes = running
    experiment = write_experiment(city, PARTIES)
    args = [a for n in nodes for a in ("--address", f"{n.node_id}={n.address}")]
    result = federation_cli("compare", str(experiment), *args, cwd=city.root)
    assert result.returncode == 0, result.stderr
    assert "central-pool" in result.stdout and "local-only" in result.stdout
    run_dir = next((city.root / "runs").iterdir())
    results = json.loads((run_dir / "results.json").read_text())
    kinds = {t["name"]: t for t in results["topologies"]}
    assert set(kinds) == {"federated (fedavg)", "federated (fedprox)", "federated (personalised)", "central-pool", "local-only"}
    for name, top in kinds.items():
        assert top["started"] and set(top["per_node"]) == set(PARTIES), name
        assert top["rounds"] == (1 if name == "federated (personalised)" else 3) and 0.0 <= top["overall"]["auc"] <= 1.0
    # raw rows leave only for the central pool, and only training rows
    assert sum(kinds["central-pool"]["raw_records_out"].values()) > 0
    assert sum(kinds["federated (fedavg)"]["raw_records_out"].values()) == 0
    assert sum(kinds["local-only"]["raw_records_out"].values()) == 0
    assert all(v > 0 for v in kinds["federated (fedavg)"]["bytes_out"].values())
    assert set(results["gain_vs_local_only"]["federated (fedavg)"]) == set(PARTIES)
    choices = kinds["federated (personalised)"]["choices"]  # each party's choice, and why, in its own words
    assert set(choices) == set(PARTIES) and all(c["method"] and c["reason"] for c in choices.values())
    for c in choices.values():  # a party keeps its default, or says by how much the chosen candidate beat it
        default = c["validation"]["default"]
        assert (
            c["label"] == default
            or f"above {'local-only' if default.startswith('local') else 'the global model'}'s" in c["reason"]
        )
        assert c["validation"]["criterion"] == "auc" and "the task's" in c["validation"]["scheme"]
    for name in (
        "report.md",
        "metrics.csv",
        "metric_per_node.png",
        "learning_curves.png",
        "gain_vs_local_only.png",
        "data_moved.png",
    ):
        assert (run_dir / name).stat().st_size > 0, name
    assert len(list((run_dir / "checkpoints" / "fedavg").glob("round-*.npz"))) == 3


def test_run_records_an_unreachable_node_and_goes_on(running: tuple[City, list[NodeProcess]]) -> None:
    city, nodes = running
    experiment = write_experiment(city, PARTIES, rounds=2)
    nodes[-1].process.kill()
    nodes[-1].process.wait()
    args = [a for n in nodes for a in ("--address", f"{n.node_id}={n.address}")]
    result = federation_cli("run", str(experiment), *args, cwd=city.root)
    assert result.returncode == 0, result.stderr
    results = json.loads((next((city.root / "runs").iterdir()) / "results.json").read_text())
    assert PARTIES[-1] in results["unreachable"]
    assert set(results["topologies"][0]["participants"]) == set(PARTIES[:-1])


def test_policy_refusals_are_reported_with_reasons(fresh_city: City) -> None:
    policy = fresh_city.policy("hills-district")
    policy.write_text(policy.read_text().replace('release = "raw"', 'release = "update"'))
    nodes = start_nodes({p: fresh_city.manifest(p) for p in PARTIES[:3]}, fresh_city.root / "node-logs")
    try:
        experiment = write_experiment(fresh_city, PARTIES[:3], rounds=1)
        args = [a for n in nodes for a in ("--address", f"{n.node_id}={n.address}")]
        result = federation_cli("compare", str(experiment), *args, cwd=fresh_city.root)
    finally:
        stop_nodes(nodes)
    assert result.returncode == 0, result.stderr
    run_dir = next((fresh_city.root / "runs").iterdir())
    pool = next(t for t in json.loads((run_dir / "results.json").read_text())["topologies"] if t["name"] == "central-pool")
    assert "hills-district" not in pool["participants"]
    assert any("raw" in reason for reason in pool["refusals"]["hills-district"])
    assert pool["raw_records_out"].get("hills-district", 0) == 0
    assert "hills-district" in (run_dir / "report.md").read_text().split("## Refusals")[1]


def test_missing_manifest_is_one_clear_error(tmp_path: Path) -> None:
    result = federation_cli("node", "serve", str(tmp_path / "nodes" / "nowhere.toml"), cwd=tmp_path)
    assert result.returncode == 2
    assert "nowhere.toml" in result.stderr and "file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_manifest_names_the_field(fresh_city: City) -> None:
    manifest = fresh_city.manifest("north-district")
    manifest.write_text(
        manifest.read_text()
        .replace("test_fraction = 0.3", 'test_fraction = "a third"')
        .replace("[split]", "[split]\nshuffle = true")
    )
    result = federation_cli("node", "serve", str(manifest), cwd=fresh_city.root)
    assert result.returncode == 2
    assert "split.test_fraction" in result.stderr and "split.shuffle: unknown field" in result.stderr


def test_data_file_with_wrong_columns_is_reported(fresh_city: City) -> None:
    manifest = fresh_city.manifest("north-district")
    text = manifest.read_text()
    line = next(line for line in text.splitlines() if line.startswith("cod = "))
    manifest.write_text(text.replace(line, 'cod = { column = "chemical_oxygen", unit = "g/m^3" }'))
    result = federation_cli("node", "serve", str(manifest), cwd=fresh_city.root, timeout=120)
    assert result.returncode == 2
    assert "data.columns.cod" in result.stderr and "chemical_oxygen" in result.stderr


def test_port_in_use_is_a_clear_message(fresh_city: City) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = federation_cli(
            "node", "serve", str(fresh_city.manifest("north-district")), "--listen", f"127.0.0.1:{port}", cwd=fresh_city.root
        )
    assert result.returncode == 2
    assert "port" in result.stderr and "in use" in result.stderr


def test_experiment_with_unknown_field_and_missing_address(fresh_city: City) -> None:
    experiment = write_experiment(fresh_city, PARTIES[:2])
    experiment.write_text(experiment.read_text().replace("[task]", "[task]\nepochs = 3"))
    result = federation_cli("compare", str(experiment), cwd=fresh_city.root)
    assert result.returncode == 2
    assert "task.epochs: unknown field" in result.stderr
    experiment = write_experiment(fresh_city, PARTIES[:2])
    result = federation_cli("compare", str(experiment), cwd=fresh_city.root)
    assert result.returncode == 2
    assert "has no address" in result.stderr


def _fit_rounds(city: City, run_id: str) -> dict[str, list[int]]:
    """Per node, the training rounds of `run_id` its audit log shows allowed (each must appear once)."""
    from federation.node.audit import read_entries

    rounds: dict[str, list[int]] = {}
    for party in PARTIES:
        state = city.root / ".federation" / "state" / party
        rounds[party] = [
            e["round"] for e in read_entries(state) if e["rpc"] == "Fit" and e["run_id"] == run_id and e["decision"] == "allow"
        ]
    return rounds


def test_a_coordinator_killed_mid_run_resumes_and_a_restarted_node_rejoins(running: tuple[City, list[NodeProcess]]) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from federation.node.audit import verify

    city, nodes = running
    experiment = write_experiment(city, PARTIES, rounds=8)
    experiment.write_text(experiment.read_text().replace('strategies = ["fedavg", "fedprox"]', 'strategies = ["fedavg"]'))
    args = [a for n in nodes for a in ("--address", f"{n.node_id}={n.address}")]
    coordinator = subprocess.Popen(
        [sys.executable, "-m", "federation", "run", str(experiment), *args],
        cwd=city.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )
    progress_file = None
    deadline = time.monotonic() + 240
    completed = 0
    while completed < 3 and time.monotonic() < deadline and coordinator.poll() is None:
        time.sleep(0.2)
        found = list((city.root / "runs").glob("*/progress.json")) if (city.root / "runs").is_dir() else []
        if found:
            progress_file = found[0]
            try:
                completed = json.loads(progress_file.read_text())["running"]["federated (fedavg)"]["completed"]
            except (KeyError, ValueError):
                completed = 0
    coordinator.send_signal(signal.SIGKILL)
    coordinator.wait()
    assert progress_file is not None and completed >= 3, "the run did not get far enough to be interrupted"
    before = json.loads(progress_file.read_text())["running"]["federated (fedavg)"]
    run_dir = progress_file.parent
    # one department's node is killed too, and restarted on its own state directory: it must rejoin
    victim = nodes[0]
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait()
    (restarted,) = start_nodes({victim.node_id: city.manifest(victim.node_id)}, city.root / "node-logs-restarted")
    nodes[0] = restarted
    args = [a for n in nodes for a in ("--address", f"{n.node_id}={n.address}")]
    result = federation_cli("run", str(experiment), *args, "--resume", str(run_dir), cwd=city.root)
    assert result.returncode == 0, result.stderr
    results = json.loads((run_dir / "results.json").read_text())
    (fedavg,) = results["topologies"]
    lost = before["started"] - before["completed"]
    assert fedavg["rounds"] == 8 - lost
    assert set(fedavg["per_node"]) == set(PARTIES)  # the restarted node took part again
    assert fedavg["note"].startswith(f"resumed after round {before['completed']}")
    stamp = run_dir.name
    fit_rounds = _fit_rounds(city, f"test-city-{stamp}-federated-fedavg")
    for party, rounds in fit_rounds.items():
        assert len(rounds) == len(set(rounds)), (party, rounds)  # no round was trained (or charged) twice
        assert max(rounds) == 8, (party, rounds)
    for party in PARTIES:
        check = verify(city.root / ".federation" / "state" / party)
        assert check.intact, (party, check.problems)


def test_compare_over_seeds_writes_a_party_table_that_matches_its_summary(running: tuple[City, list[NodeProcess]]) -> None:
    import csv
    import math
    import statistics as stats

    city, nodes = running
    experiment = write_experiment(city, PARTIES, rounds=2)
    experiment.write_text(experiment.read_text().replace('strategies = ["fedavg", "fedprox"]', 'strategies = ["fedavg"]'))
    args = [a for n in nodes for a in ("--address", f"{n.node_id}={n.address}")]
    refused = federation_cli("compare", str(experiment), *args, "--seeds", "0", cwd=city.root)
    assert refused.returncode == 2 and "at least one seed" in refused.stderr
    result = federation_cli("compare", str(experiment), *args, "--seeds", "2", cwd=city.root)
    assert result.returncode == 0, result.stderr
    run_dir = next(p for p in (city.root / "runs").iterdir() if p.name.endswith("-seeds"))
    assert sorted(p.name for p in run_dir.glob("seed-*")) == ["seed-1", "seed-2"]
    with (run_dir / "parties.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    topologies = {"federated (fedavg)", "federated (personalised)", "central-pool", "local-only"}
    assert len(rows) == 2 * len(topologies) * len(PARTIES)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["topologies"]) == topologies
    for row in rows:  # every seed's figure is the one that seed's own results.json reports
        seed_results = json.loads(next((run_dir / f"seed-{row['seed']}").glob("results.json")).read_text())
        reported = next(t for t in seed_results["topologies"] if t["name"] == row["topology"])
        assert float(row["value"]) == pytest.approx(reported["per_node"][row["party"]]["auc"], abs=1e-6)
    for name, top in summary["topologies"].items():  # and the summary is recomputable from the table
        for party in PARTIES:
            mine = [float(r["value"]) for r in rows if r["topology"] == name and r["party"] == party]
            local = [float(r["value"]) for r in rows if r["topology"] == "local-only" and r["party"] == party]
            assert top["per_party"][party]["mean"] == pytest.approx(stats.mean(mine), abs=1e-5)
            assert top["per_party"][party]["gain"] == pytest.approx(stats.mean(mine) - stats.mean(local), abs=1e-5)
        hurt = [p for p in PARTIES if top["per_party"][p]["gain"] < 0]
        assert top["share_hurt"] == pytest.approx(len(hurt) / len(PARTIES)) or name == "local-only"
        assert not math.isnan(top["mean_over_parties"]["mean"])
    report = (run_dir / "report.md").read_text()
    assert "Where federation does not pay" in report and "Fewer than 5 seeds" in report


REGRESSION_SCHEMA_EXTRA = """
[[derived]]
name = "inspection_month_sin"
kind = "month_sin"
source = "inspection_date"

[[derived]]
name = "previous_cod"
kind = "lag"
source = "cod"
entity = "firm_id"
order = "inspection_date"
"""


def test_a_regression_with_derived_features_runs_through_every_topology(fresh_city: City) -> None:
    """The city's COD concentration predicted from its other records: R² per node and pooled, for all topologies."""
    from fedkit import FEATURES

    schema = fresh_city.root / "examples" / "pollution_enforcement" / "schema.toml"
    schema.write_text(schema.read_text().replace('target = "violation"', 'target = "cod"') + REGRESSION_SCHEMA_EXTRA)
    experiment = write_experiment(fresh_city, PARTIES, rounds=3)
    features = [f for f in FEATURES if f != "cod"] + ["violation", "inspection_month_sin", "previous_cod"]
    text = experiment.read_text().replace('target = "violation"', 'target = "cod"\nmetric = "r2"')
    listed = text[text.index("features = [") : text.index("]", text.index("features = [")) + 1]
    text = text.replace(listed, "features = [" + ", ".join(f'"{f}"' for f in features) + "]")  # the policies allow mlp
    text = text.replace('strategies = ["fedavg", "fedprox"]', 'strategies = ["fedavg"]')
    experiment.write_text(text)
    nodes = start_nodes({p: fresh_city.manifest(p) for p in PARTIES}, fresh_city.root / "node-logs")
    try:
        args = [a for n in nodes for a in ("--address", f"{n.node_id}={n.address}")]
        result = federation_cli("compare", str(experiment), *args, cwd=fresh_city.root)
    finally:
        stop_nodes(nodes)
    assert result.returncode == 0, result.stderr
    results = json.loads((next((fresh_city.root / "runs").iterdir()) / "results.json").read_text())
    assert results["metric"] == "r2"
    by_name = {t["name"]: t for t in results["topologies"]}
    assert set(by_name) == {"federated (fedavg)", "federated (personalised)", "central-pool", "local-only"}
    for name, top in by_name.items():
        assert top["started"] and set(top["per_node"]) == set(PARTIES), name
        assert set(top["overall"]) == {"r2", "rmse", "mae"} and top["overall"]["rmse"] > 0, name
        assert 0.1 < top["overall"]["r2"] <= 1, name  # the target is standardised with the nodes' summed statistics
        if name != "federated (personalised)":  # personalisation chooses a candidate, not a round
            assert set(top["chosen_rounds"]) == set(PARTIES)  # each reports its best round on validation
