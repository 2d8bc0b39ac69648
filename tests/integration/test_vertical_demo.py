"""`federation demo` of the mass-balance city as a user runs it: five node processes, the CLI, files on disk.

One test, because it is slow: the PSI, the three arrangements over two
seeds, the report, every audit log intact, and the label party's staff
reading the ranking on their own node with `federation score`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fedkit import federation_cli, load_script

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mass_balance"


def test_the_vertical_demo_prints_three_arrangements_writes_the_report_and_leaves_the_ranking_with_the_label_party(
    tmp_path: Path,
) -> None:
    example = tmp_path / "examples" / "mass_balance"
    for folder in ("nodes", "policies", "schemas"):
        shutil.copytree(EXAMPLE / folder, example / folder)
    load_script(EXAMPLE / "generate.py", "mass_balance_generate_demo").generate(example / "data", firms=600, seed=11)
    text = (
        (EXAMPLE / "experiment.toml")
        .read_text()
        .replace("seeds = 5 ", "seeds = 2 ")
        .replace("max_steps = 600", "max_steps = 100")
    )
    (example / "experiment.toml").write_text(text)
    result = federation_cli("demo", "examples/mass_balance/experiment.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("vertical (on shares)", "central pool", "local-only", "nodes stopped"):
        assert name in result.stdout
    assert result.stdout.count(" intact (") == 5
    run_dir = next((tmp_path / "runs" / "mass-balance-vertical").glob("2*"))
    results = json.loads((run_dir / "results.json").read_text())
    kinds = {a["kind"]: a for a in results["arrangements"]}
    for seed in range(2):
        shares, pooled = (kinds[k]["runs"][seed]["measures"]["auc"] for k in ("vertical", "central-pool"))
        assert abs(shares - pooled) < 0.002
    assert (run_dir / "report.md").is_file() and (run_dir / "vertical.png").stat().st_size > 10_000
    score = federation_cli("score", "examples/mass_balance/nodes/ecology-bureau.toml", "--top", "5", cwd=tmp_path)
    assert score.returncode == 0, score.stderr
    assert "the 5 riskiest of" in score.stdout
    water = federation_cli("score", "examples/mass_balance/nodes/water-bureau.toml", cwd=tmp_path)
    assert water.returncode == 2 and "keeps no ranking" in water.stderr  # only the label party holds one
