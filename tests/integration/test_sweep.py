"""`federation sweep` as an analyst runs it: real node processes, a report with a plot per varied key, resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fedkit import PARTIES, City, federation_cli, write_experiment

pytestmark = pytest.mark.slow


def test_a_two_value_sweep_writes_a_report_with_a_plot_per_key_and_resumes(fresh_city: City) -> None:
    experiment = write_experiment(fresh_city, PARTIES[:3], rounds=2)
    out = fresh_city.root / "sweep"
    args = ["sweep", str(experiment), "--vary", "privacy.epsilon=2,inf", "--vary", "task.rounds=1,2", "--output", str(out)]
    result = federation_cli(*args, cwd=fresh_city.root)
    assert result.returncode == 0, result.stderr
    points = sorted(out.glob("point-*/point.json"))
    assert len(points) == 4
    saved = [json.loads(p.read_text()) for p in points]
    assert {(s["combination"]["privacy.epsilon"], s["combination"]["task.rounds"]) for s in saved} == {
        (2, 1),
        (2, 2),
        ("inf", 1),
        ("inf", 2),
    }
    private = next(s for s in saved if s["combination"] == {"privacy.epsilon": 2, "task.rounds": 2})["results"]
    names = {t["name"] for t in private["topologies"]}
    assert "central-pool (central DP)" in names
    fed = next(t for t in private["topologies"] if t["name"] == "federated (fedavg)")
    assert fed["privacy"]["record"] == 1.0 and fed["privacy"]["epsilon"] == 2  # DP-SGD on every node by default
    report = (out / "report.md").read_text()
    for key in ("privacy_epsilon", "task_rounds"):
        for kind in ("auc", "gain", "privacy", "data_moved"):
            assert (out / f"{key}_{kind}.png").stat().st_size > 0, (key, kind)
    assert "## privacy.epsilon" in report and "## task.rounds" in report
    before = {p: p.stat().st_mtime for p in points}
    again = federation_cli(*args, cwd=fresh_city.root)
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime for p in points} == before  # every point was reused, none recomputed


def test_an_unknown_key_suggests_the_closest(fresh_city: City) -> None:
    experiment = write_experiment(fresh_city, PARTIES[:2], rounds=1)
    result = federation_cli("sweep", str(experiment), "--vary", "privacy.epsilom=1,2", cwd=fresh_city.root)
    assert result.returncode == 2
    assert "did you mean 'privacy.epsilon'" in result.stderr
    result = federation_cli("sweep", str(experiment), "--vary", "task.rounds=ten", cwd=fresh_city.root)
    assert result.returncode == 2 and "task.rounds" in result.stderr


def test_policy_values_that_every_node_refuses_are_reported(fresh_city: City) -> None:
    experiment = write_experiment(fresh_city, PARTIES[:3], rounds=1)
    out = fresh_city.root / "sweep"
    result = federation_cli(
        "sweep", str(experiment), "--vary", "policies.*.release=none,raw", "--output", str(out), cwd=fresh_city.root
    )
    assert result.returncode == 0, result.stderr
    report = (out / "report.md").read_text()
    refused = report.split("## Refused or failed combinations")[1]
    assert "policies.*.release=none" in refused


def test_a_sweep_stopped_by_sigterm_leaves_no_node_processes(fresh_city: City) -> None:
    experiment = write_experiment(fresh_city, PARTIES[:2], rounds=1)
    out = fresh_city.root / "sweep"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "federation", "sweep", str(experiment), "--vary", "task.rounds=1,2", "--output", str(out)],
        cwd=fresh_city.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list((out / "nodes").glob("*.address"))) < 2:  # both nodes serve; the comparison starts
            assert sweep.poll() is None and time.monotonic() < deadline, sweep.stderr.read() if sweep.stderr else ""
            time.sleep(0.2)
        nodes = children(sweep.pid)
        assert len(nodes) == 2
        sweep.send_signal(signal.SIGTERM)
        assert sweep.wait(timeout=30) == 128 + signal.SIGTERM
        assert not any(Path(f"/proc/{pid}").exists() for pid in nodes)  # stopped and reaped by the sweep itself
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()


def children(pid: int) -> list[int]:
    """Pids whose parent is `pid`, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found
