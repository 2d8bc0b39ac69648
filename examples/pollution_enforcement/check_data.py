"""Sanity check that the synthetic city makes federation worth measuring (a script, not a test).

Generates the city into a temporary directory, maps each district's local columns
back to canonical names through its manifest in ``nodes/``, splits each district
with its own ``[split]`` settings, and trains a logistic regression and a small MLP
(a) on all districts pooled and (b) on each district alone. The generator is tuned
so that pooled reaches a test AUC of 0.80-0.90, the smallest districts alone fall
clearly below pooled and the largest alone stays close to it.

Run: ``python examples/pollution_enforcement/check_data.py [--seed 7] [--scale 1.0] [--repeats 10]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from generate import DISTRICTS, generate_city  # noqa: E402

NUMERIC = (
    "cod",
    "nh3n",
    "flow",
    "ph",
    "production",
    "energy",
    "employees",
    "past_violations",
    "days_since_inspection",
)
CODES = ("chemical", "paper", "food", "metal", "textile")
TARGET = "violation"
EPOCHS = 300
MODELS = ("logreg", "mlp")


@dataclass(frozen=True)
class Split:
    """One district's canonical train and test frames."""

    party: str
    train: pd.DataFrame
    test: pd.DataFrame


def load_party(manifest_path: Path, data_file: Path) -> Split:
    """Read a district's file in its local columns and return its canonical split, as its manifest says."""
    with manifest_path.open("rb") as handle:
        manifest = tomllib.load(handle)
    party = manifest["node"]["id"]
    columns: dict[str, str] = manifest["data"]["columns"]
    frame = pd.read_csv(data_file) if data_file.suffix == ".csv" else pd.read_parquet(data_file)
    with (manifest_path.parent / manifest["data"]["schema"]).open("rb") as handle:
        fields = {field["name"] for field in tomllib.load(handle)["field"]}
    problems = []
    if Path(manifest["data"]["path"]).name != data_file.name:
        problems.append(f"data.path names {manifest['data']['path']}, the generator wrote {data_file.name}")
    if set(columns) != fields:
        problems.append(f"[data.columns] fields {sorted(set(columns) ^ fields)} disagree with the schema")
    if missing := sorted(set(columns.values()) - set(frame.columns)):
        problems.append(f"columns missing from the data: {missing}")
    if unmapped := sorted(set(frame.columns) - set(columns.values()) - {"firm_name"}):
        problems.append(f"columns not mapped by the manifest: {unmapped}")
    if problems:
        raise ValueError(f"{manifest_path}: " + "; ".join(problems))
    frame = frame[list(columns.values())].rename(columns={local: canon for canon, local in columns.items()})

    # Stratified on the label: a district with 15 violations must not get 2 of them in its test set.
    rng = np.random.default_rng(manifest["split"]["seed"])
    fraction = manifest["split"]["test_fraction"]
    test_rows: list[int] = []
    for label in (0, 1):
        rows = rng.permutation(np.flatnonzero(frame[TARGET].to_numpy() == label))
        test_rows.extend(rows[: round(fraction * len(rows))])
    is_test = np.zeros(len(frame), dtype=bool)
    is_test[test_rows] = True
    return Split(party, frame[~is_test], frame[is_test])


def features(frame: pd.DataFrame, mean: pd.Series, std: pd.Series) -> torch.Tensor:
    """Standardise the numeric fields (pooled-training statistics) and one-hot encode industry."""
    numeric = ((frame[list(NUMERIC)].astype(float) - mean) / std).to_numpy()
    onehot = (frame["industry"].to_numpy()[:, None] == np.array(CODES)[None, :]).astype(float)
    return torch.tensor(np.hstack([numeric, onehot]), dtype=torch.float32)


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Rank (Mann-Whitney) AUC with tied scores sharing their average rank."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.bincount(inverse, weights=ranks) / counts)[inverse]
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def make_model(kind: str, width: int) -> torch.nn.Module:
    if kind == "logreg":
        return torch.nn.Linear(width, 1)
    return torch.nn.Sequential(torch.nn.Linear(width, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))


def train(kind: str, x: torch.Tensor, y: torch.Tensor) -> torch.nn.Module:
    """Full-batch Adam for a fixed number of epochs: the same budget pooled and alone."""
    torch.manual_seed(0)
    model = make_model(kind, x.shape[1])
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(EPOCHS):
        optimiser.zero_grad()
        loss_fn(model(x).squeeze(1), y).backward()
        optimiser.step()
    return model


def scores(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return np.asarray(model(x).squeeze(1).numpy(), dtype=np.float64)


@dataclass(frozen=True)
class Evaluation:
    """Test AUCs keyed by (party, model, "pooled" | "alone") plus each party's split sizes."""

    auc: dict[tuple[str, str, str], float]
    counts: dict[str, tuple[int, int, int, int]]  # train, train positives, test, test positives


def evaluate(seed: int, scale: float) -> Evaluation:
    """Generate one city and compare a pooled model with each district's own, for both model kinds."""
    with tempfile.TemporaryDirectory() as tmp:
        files = generate_city(Path(tmp), seed=seed, scale=scale)
        splits = [load_party(REPO / "nodes" / f"{d.party}.toml", files[d.party]) for d in DISTRICTS]

    pooled_train = pd.concat([s.train for s in splits])
    mean = pooled_train[list(NUMERIC)].astype(float).mean()
    std = pooled_train[list(NUMERIC)].astype(float).std()

    def xy(frame: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        return features(frame, mean, std), torch.tensor(frame[TARGET].to_numpy(), dtype=torch.float32)

    results: dict[tuple[str, str, str], float] = {}
    for kind in MODELS:
        pooled = train(kind, *xy(pooled_train))
        all_y, all_pooled, all_alone = [], [], []
        for s in splits:
            x_test, y_test = xy(s.test)
            alone = train(kind, *xy(s.train))
            p, a = scores(pooled, x_test), scores(alone, x_test)
            results[(s.party, kind, "pooled")] = auc(y_test.numpy(), p)
            results[(s.party, kind, "alone")] = auc(y_test.numpy(), a)
            all_y.append(y_test.numpy())
            all_pooled.append(p)
            all_alone.append(a)
        results[("all", kind, "pooled")] = auc(np.concatenate(all_y), np.concatenate(all_pooled))
        results[("all", kind, "alone")] = auc(np.concatenate(all_y), np.concatenate(all_alone))

    counts = {s.party: _counts(s.train, s.test) for s in splits}
    counts["all"] = _counts(pooled_train, pd.concat([s.test for s in splits]))
    return Evaluation(results, counts)


def _counts(train_frame: pd.DataFrame, test_frame: pd.DataFrame) -> tuple[int, int, int, int]:
    return len(train_frame), int(train_frame[TARGET].sum()), len(test_frame), int(test_frame[TARGET].sum())


def print_table(aucs: dict[tuple[str, str, str], float], counts: dict[str, tuple[int, int, int, int]]) -> None:
    print(f"{'party':18s} {'train':>5s} {'pos':>4s} {'test':>5s} {'pos':>4s}", end="")
    print("".join(f"  {kind + ' pooled':>13s}  alone   diff" for kind in MODELS))
    for party in [d.party for d in DISTRICTS] + ["all"]:
        line = "{:18s} {:5d} {:4d} {:5d} {:4d}".format(party, *counts[party])
        for kind in MODELS:
            p, a = aucs[(party, kind, "pooled")], aucs[(party, kind, "alone")]
            line += f"  {p:13.3f} {a:6.3f} {a - p:+6.3f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description="Pooled vs alone test AUC on the synthetic city.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=10, help="generator seeds to average over (0: skip)")
    args = parser.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead

    first = evaluate(args.seed, args.scale)
    print(f"synthetic city, seed={args.seed} scale={args.scale}: test AUC, pooled vs alone ({EPOCHS} epochs)")
    print_table(first.auc, first.counts)
    print("'all' = every district's test set together; its 'alone' concatenates each district's own model,")
    print("which knows its district's base rate (a pooled model without a district feature does not).")

    if args.repeats > 1:
        runs = [first] + [evaluate(args.seed + k, args.scale) for k in range(1, args.repeats)]
        mean_auc = {key: float(np.nanmean([r.auc[key] for r in runs])) for key in first.auc}
        mean_counts = {
            party: tuple(round(np.mean([r.counts[party][i] for r in runs])) for i in range(4)) for party in first.counts
        }
        seeds = f"{args.seed}..{args.seed + args.repeats - 1}"
        print(f"\nmean over generator seeds {seeds} (a test set with 4 violations gives an AUC give or take 0.1)")
        print_table(mean_auc, mean_counts)  # type: ignore[arg-type]
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
