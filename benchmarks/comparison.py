"""What a trustworthy comparison costs: personalisation against plain federation, and N seeds against one.

Starts an experiment's nodes as real processes (as `federation demo` does),
then runs `federation compare` twice against the same nodes: once with one
seed and once with `--seeds N`. It reports, as ratios measured in this run:

  (a) the personalised topology's wall time against the plain federated
      topology's it personalises (from each seed's `results.json`; the issue's
      target is at most 1.5x, since personalisation reuses the global rounds),
  (b) the wall time of `--seeds N` against N times that of one seed (target: at
      most 1.0, i.e. N seeds never cost more than N separate runs).

    python benchmarks/comparison.py [EXPERIMENT] [--seeds N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from federation.experiments.config import load_experiment
from federation.experiments.launcher import prepare_identities, start_nodes, stop_nodes
from federation.experiments.topologies import PERSONALISED

ROOT = Path(__file__).resolve().parent.parent
CITY = ROOT / "examples" / "pollution_enforcement" / "experiment.toml"


def compare(experiment: Path, addresses: list[str], seeds: int) -> tuple[float, Path]:
    """One `federation compare` over the running nodes: its wall time and its run directory."""
    command = [sys.executable, "-m", "federation", "compare", str(experiment), *addresses]
    if seeds > 1:
        command += ["--seeds", str(seeds)]
    started = time.perf_counter()
    wide = {**os.environ, "COLUMNS": "1000"}  # one line per printed path
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=wide)
    elapsed = time.perf_counter() - started
    report = next(line for line in done.stdout.splitlines() if line.startswith("report:"))
    return elapsed, Path(report.split(":", 1)[1].strip()).parent


def topology_seconds(run_dir: Path) -> list[tuple[float, float]]:
    """(plain federated, personalised) wall seconds of every seed under `run_dir`."""
    pairs = []
    for results in sorted(run_dir.glob("**/results.json")):
        walls = {t["name"]: t["wall_seconds"] for t in json.loads(results.read_text())["topologies"] if t["started"]}
        federated = next((v for k, v in walls.items() if k.startswith("federated (") and k != PERSONALISED), None)
        if federated is not None and PERSONALISED in walls:
            pairs.append((federated, walls[PERSONALISED]))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", type=Path, default=CITY)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    loaded = load_experiment(args.experiment)
    manifests = {node: manifest for node, _, manifest in loaded.nodes if manifest is not None}
    prepare_identities(loaded.pki_dir, manifests, loaded.coordinator)
    nodes = start_nodes(manifests, loaded.output_dir / "nodes", pki_dir=loaded.pki_dir)
    try:
        addresses = [a for n in nodes for a in ("--address", f"{n.node_id}={n.address}")]
        one, one_dir = compare(args.experiment, addresses, 1)
        many, many_dir = compare(args.experiment, addresses, args.seeds)
    finally:
        stop_nodes(nodes)
    pairs = topology_seconds(one_dir) + topology_seconds(many_dir)
    ratios = [p / f for f, p in pairs]
    result = {
        "experiment": loaded.name,
        "one_seed_seconds": round(one, 1),
        "seeds": args.seeds,
        "seeds_seconds": round(many, 1),
        "seeds_vs_n_single_runs": round(many / (args.seeds * one), 3),
        "personalised_vs_federated": [round(r, 3) for r in ratios],
        "personalised_vs_federated_max": round(max(ratios), 3) if ratios else None,
    }
    print(
        f"{loaded.name}: one seed {one:.1f} s; {args.seeds} seeds {many:.1f} s = "
        f"{result['seeds_vs_n_single_runs']:.2f} x {args.seeds} single runs (target <= 1.0)"
    )
    if ratios:
        print(
            f"personalised / plain federated wall time per seed: {', '.join(f'{r:.2f}' for r in ratios)} "
            f"(max {max(ratios):.2f}; target <= 1.5)"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
