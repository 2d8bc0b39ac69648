"""What vertical federation buys the ecology bureau, and what computing on shares costs, in one run.

On the SYNTHETIC mass-balance city (examples/mass_balance), aligned on the
firms all five parties hold and split the same way for every arrangement:

  local-only     the ecology bureau's logistic regression on its own columns;
  central-pool   the joined table at one place (float, the status quo);
  vertical       the same model trained on shares (`vertical.logistic`),
                 every party played in this process;
  minus one      vertical without one department's columns (its lift).

Each is trained to its best by early stopping on the validation log-loss;
the test rows give AUC and precision / recall at k inspections (k = 5 % of
the shared firms). It repeats over several split seeds and prints mean and
spread, and the wall time of a shared run against the float run of the
same model. The intersection is the plaintext join of the prepared keys
here (the PSI that finds it is measured by benchmarks/psi.py).

    python benchmarks/vertical.py [--seeds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from federation.data.sources import read_table
from federation.node.keys import FirmKeys, prepare_rows
from federation.node.runtime import NodeRuntime
from federation.vertical.align import TEST, TRAIN, aligned, roles
from federation.vertical.features import prepare
from federation.vertical.helper import SeededHelper
from federation.vertical.logistic import Party, budgets, train
from federation.vertical.rows import at_k, auc

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mass_balance"
LABEL = "ecology-bureau"
COLUMNS = {
    "ecology-bureau": ["outflow", "cod", "emissions", "past_violations"],
    "water-bureau": ["intake"],
    "commerce-bureau": ["materials"],
    "statistics-bureau": ["output"],
    "power-utility": ["electricity"],
}


def load_city() -> tuple[dict[str, pd.DataFrame], dict[str, FirmKeys]]:
    """Each party's harmonised records and prepared keys, as its node loads them (the data generated if missing)."""
    if not (EXAMPLE / "data" / "ecology-bureau.csv").exists():
        subprocess.run([sys.executable, str(EXAMPLE / "generate.py"), "--out", str(EXAMPLE / "data")], check=True)
    frames, keys = {}, {}
    for party in COLUMNS:
        runtime = NodeRuntime.load(EXAMPLE / "nodes" / f"{party}.toml")
        manifest = runtime.manifest
        assert manifest.keys is not None
        keys[party] = prepare_rows(read_table(manifest.data_path), manifest.keys, where=str(manifest.path))
        frames[party] = pd.concat([runtime.train, runtime.test], ignore_index=True)
    return frames, keys


def fit(parties: list[Party], labels: np.ndarray, split: np.ndarray, shared: bool, seed: int) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    train(parties, labels, split, SeededHelper(seed) if shared else None, max_steps=600, learning_rate=2.0, l2=1e-3)
    return sum(p.features @ p.weights for p in parties), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    frames, keys = load_city()
    shared_keys = sorted(set.intersection(*(set(k.distinct) for k in keys.values())))
    results: dict[str, list[dict[str, float]]] = {}
    timing = []
    for seed in range(args.seeds):
        split = roles(shared_keys, seed=f"bench-{seed}", test_fraction=0.3, validation_fraction=0.15)
        rows = {
            p: aligned(frames[p], keys[p].by_row, shared_keys, [*COLUMNS[p], *(["violation"] if p == LABEL else [])])
            for p in COLUMNS
        }
        labels = rows[LABEL]["violation"].astype(float).to_numpy()
        matrices = {p: prepare(rows[p], COLUMNS[p], split == TRAIN) for p in COLUMNS}
        matrices[LABEL] = np.hstack([matrices[LABEL], np.ones((len(labels), 1))])
        known = np.isfinite(labels)
        test = (split == TEST) & known
        k = max(1, round(0.05 * int(test.sum())))

        def parties(names: list[str], matrices: dict[str, np.ndarray] = matrices) -> list[Party]:
            bound = budgets({n: matrices[n].shape[1] for n in names})
            return [Party(n, matrices[n], bound[n]) for n in names]

        arrangements = {
            "local-only (ecology alone)": ([LABEL], False),
            "central-pool (float, joined)": (list(COLUMNS), False),
            "vertical (on shares)": (list(COLUMNS), True),
            **{f"vertical without {p}": ([n for n in COLUMNS if n != p], False) for p in COLUMNS if p != LABEL},
        }
        for name, (names, shared) in arrangements.items():
            split_known = np.where(known, split, TEST + 1)
            scores, seconds = fit(parties(names), np.nan_to_num(labels), split_known, shared, seed)
            precision, recall = at_k(scores[test], labels[test], k)
            results.setdefault(name, []).append(
                {"auc": auc(scores[test], labels[test]), "precision_at_k": precision, "recall_at_k": recall, "seconds": seconds}
            )
        timing.append(results["vertical (on shares)"][-1]["seconds"] / results["central-pool (float, joined)"][-1]["seconds"])
    print(f"{len(shared_keys)} firms shared by all five parties; k = 5 % of the test firms; {args.seeds} split seeds (mean ± sd)")
    for name, runs in results.items():
        line = "  ".join(
            f"{metric} {np.mean([r[metric] for r in runs]):.3f} ± {np.std([r[metric] for r in runs]):.3f}"
            for metric in ("auc", "precision_at_k", "recall_at_k")
        )
        print(f"  {name:<34} {line}")
    print(f"wall time of training on shares / the same training in float: {np.mean(timing):.1f}x")
    if args.json:
        args.json.write_text(
            json.dumps({"shared_firms": len(shared_keys), "results": results, "shared_over_float": timing}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
