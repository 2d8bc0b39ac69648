"""Sanity check of the synthetic city and its manifests (a script, not a test).

Generates the city into a temporary directory and, for every district:

1. reads its file as its manifest in ``nodes/`` says and harmonises it with a small
   harmoniser of its own (pint for units, the declared codes, date formats,
   missing markers, versioned mappings, the schema's ranges, required fields and
   ``[quality] unique``), independent of ``federation/data/``;
2. checks the manifest against the file (every field mapped, every column present
   and in the schema's order, every unit convertible, every local code known) and
   the harmonised records against the generator's own canonical records, including
   how many records are excluded and why;
3. compares a pooled model with each district's own model (logistic regression and
   a small MLP), and the pooled model on the same files read naively (columns
   matched by position, no unit conversion, codes as written).

The generator is tuned so that pooled reaches a test AUC of 0.80-0.90, the smallest
districts alone fall clearly below pooled and the largest alone stays close to it.

Run: ``python examples/pollution_enforcement/check_data.py [--seed 7] [--scale 1.0] [--repeats 10]``
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
import tomllib
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pint
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from generate import DISTRICTS, generate_city, generate_district  # noqa: E402

with (HERE / "schema.toml").open("rb") as _handle:
    SCHEMA: dict[str, Any] = tomllib.load(_handle)
FIELDS: dict[str, dict[str, Any]] = {f["name"]: f for f in SCHEMA["field"]}
TARGET = SCHEMA["target"]
NUMERIC = tuple(n for n, f in FIELDS.items() if f["type"] in ("float", "int"))
CODES = tuple(FIELDS["industry"]["codes"])
EPOCHS = 300
MODELS = ("logreg", "mlp")
UNITS = pint.UnitRegistry()
# The generator's problem kinds, as this harmoniser names the reason for excluding a record.
REASON = {
    "negative_flow": "out of range",
    "bad_ph": "out of range",
    "missing_required": "missing required",
    "duplicate": "duplicate",
}
TOLERANCE = 0.005  # what rounding in a local unit may change, in the schema's unit


class CheckFailed(Exception):
    """A manifest disagrees with its file or with the generator; carries every problem found."""


def read_local(manifest: dict[str, Any], base: Path) -> pd.DataFrame:
    """The local table as written: CSV as text, Parquet typed, SQLite through the manifest's query."""
    data = manifest["data"]
    path = base / data["path"]
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return pd.read_sql_query(data["query"], db)


def _spec(mapping: str | dict[str, Any]) -> dict[str, Any]:
    return {"column": mapping} if isinstance(mapping, str) else dict(mapping)


def _factor(local_unit: str, schema_unit: str) -> float:
    """Multiplicative conversion factor; refuses units with an offset (none here)."""
    if UNITS.Quantity(0.0, local_unit).to(schema_unit).magnitude != 0.0:
        raise ValueError(f"{local_unit} -> {schema_unit} has an offset")
    return float(UNITS.Quantity(1.0, local_unit).to(schema_unit).magnitude)


def read_field(raw: pd.Series, spec: dict[str, Any], name: str, markers: list[str]) -> tuple[pd.Series, pd.Series]:
    """(canonical values, records whose value cannot be read); a missing value is NaN, not bad."""
    field = FIELDS[name]
    text = raw.astype("string").str.strip()
    missing = (raw.isna() | text.isin([*markers, *spec.get("missing", [])]).fillna(False)).astype(bool)
    present = text.where(~missing)
    kind = field["type"]
    if kind in ("float", "int", "bool"):
        values = pd.to_numeric(present, errors="coerce").astype(float)
        bad = values.isna() & ~missing
        if kind == "bool":
            bad |= ~values.isin([0.0, 1.0]) & ~missing
        if "unit" in spec:
            values = values * _factor(spec["unit"], field["unit"])
        return values, bad
    if kind == "category":
        codes = spec.get("codes", {})
        values = present.map(lambda v: codes.get(v, v), na_action="ignore")
        return values, ~values.isin(field["codes"]).fillna(False).astype(bool) & ~missing
    if kind == "date":
        values = pd.to_datetime(present, format=spec["format"], errors="coerce").dt.normalize()
        return values, values.isna() & ~missing
    return present, pd.Series(False, index=raw.index)


def harmonise(frame: pd.DataFrame, manifest: dict[str, Any]) -> tuple[pd.DataFrame, Counter[str]]:
    """Canonical records kept, and the excluded ones counted by their first reason."""
    data = manifest["data"]
    markers = list(data.get("missing", []))
    base = {name: _spec(m) for name, m in data["columns"].items()}
    versions = data.get("versions", [])
    in_version: list[pd.Series] = []
    if versions:
        dates, _ = read_field(frame[base[data["date_field"]]["column"]], base[data["date_field"]], data["date_field"], markers)
        for version in versions:
            mask = dates.notna()
            if "from" in version:
                mask &= dates >= pd.Timestamp(version["from"])
            if "until" in version:
                mask &= dates <= pd.Timestamp(version["until"])
            in_version.append(mask.astype(bool))
    canonical = pd.DataFrame(index=frame.index)
    reason = pd.Series("", index=frame.index, dtype=object)
    for name, field in FIELDS.items():
        values = pd.Series(np.nan, index=frame.index, dtype=object)
        bad = pd.Series(False, index=frame.index)
        rest = pd.Series(True, index=frame.index)
        for mask, version in zip(in_version, versions, strict=True):
            if name in version["columns"]:
                spec = _spec(version["columns"][name])
                part, part_bad = read_field(frame.loc[mask & rest, spec["column"]], spec, name, markers)
                values.loc[part.index], bad.loc[part.index] = part.astype(object), part_bad
                rest &= ~mask
        part, part_bad = read_field(frame.loc[rest, base[name]["column"]], base[name], name, markers)
        values.loc[part.index], bad.loc[part.index] = part.astype(object), part_bad
        values = values.infer_objects()
        canonical[name] = values
        unreadable = reason.eq("") & bad
        reason[unreadable] = "unknown code" if field["type"] == "category" else "does not parse"
        if field.get("required", True):
            reason[reason.eq("") & values.isna()] = "missing required"
        if "min" in field or "max" in field:
            number = pd.to_numeric(values, errors="coerce")
            outside = (number < field.get("min", -np.inf)) | (number > field.get("max", np.inf))
            reason[reason.eq("") & outside] = "out of range"
    unique = manifest.get("quality", {}).get("unique", [])
    if unique:
        repeated = canonical.loc[reason.eq("")].duplicated(subset=unique, keep="first")
        reason[repeated[repeated].index] = "duplicate"
    kept = canonical.loc[reason.eq("")].reset_index(drop=True)
    return kept, Counter(reason[reason.ne("")].tolist())


def read_naively(frame: pd.DataFrame) -> pd.DataFrame:
    """The baseline: the i-th local column is the i-th canonical field, values and codes as written."""
    naive = pd.DataFrame(index=frame.index)
    for position, (name, field) in enumerate(FIELDS.items()):
        raw = frame.iloc[:, position]
        if field["type"] in ("float", "int", "bool"):
            naive[name] = pd.to_numeric(raw.astype("string").str.strip(), errors="coerce").astype(float)
        else:
            naive[name] = raw.astype("string")
    return naive.loc[naive[TARGET].isin([0.0, 1.0])].reset_index(drop=True)


def check_manifest(manifest: dict[str, Any], frame: pd.DataFrame, declared: str, written: Path) -> list[str]:
    """Everything wrong with a manifest against its file, before any record is read."""
    data = manifest["data"]
    problems = []
    if Path(declared).name != written.name:
        problems.append(f"data.path names {declared}, the generator wrote {written.name}")
    if list(data["columns"]) != list(FIELDS):
        problems.append(f"[data.columns] lists {list(data['columns'])}, not the schema's fields in order")
    tables = [("data.columns", data["columns"])] + [
        (f"data.versions[{i}].columns", v["columns"]) for i, v in enumerate(data.get("versions", []))
    ]
    for where, columns in tables:
        for name, mapping in columns.items():
            spec = _spec(mapping)
            if spec["column"] not in frame.columns:
                problems.append(f"{where}.{name}: column {spec['column']!r} is not in the file")
            if "unit" in spec:
                try:
                    _factor(spec["unit"], FIELDS[name]["unit"])
                except (pint.errors.PintError, ValueError, KeyError) as error:
                    problems.append(f"{where}.{name}: unit {spec['unit']!r} does not convert ({error})")
            if unknown := sorted(set(spec.get("codes", {}).values()) - set(FIELDS[name].get("codes", []))):
                problems.append(f"{where}.{name}: codes map to {unknown}, not in the schema")
    local = [_spec(m)["column"] for m in data["columns"].values()]
    if list(frame.columns[: len(local)]) != local:
        problems.append(f"the file's first columns {list(frame.columns[: len(local)])} are not the mapped ones in schema order")
    return problems


def check_against_truth(kept: pd.DataFrame, excluded: Counter[str], truth: pd.DataFrame) -> list[str]:
    """The harmonised records are the generator's clean records; the exclusions its problem records."""
    problems = []
    expected = Counter(REASON[p] for p in truth["problem"] if p)
    if excluded != expected:
        problems.append(f"excluded {dict(excluded)}, the generator made {dict(expected)}")
    clean = truth.loc[truth["problem"] == ""].reset_index(drop=True)
    if len(kept) != len(clean):
        return [*problems, f"kept {len(kept)} records, the generator made {len(clean)} clean ones"]
    for name, field in FIELDS.items():
        got, want = kept[name], clean[name]
        if field["type"] in ("float", "int", "bool"):
            a, b = got.to_numpy(dtype=float), want.to_numpy(dtype=float)
            same = np.isclose(a, b, rtol=1e-6, atol=TOLERANCE) | (np.isnan(a) & np.isnan(b))
        elif field["type"] == "date":
            same = (pd.to_datetime(got).dt.date == pd.to_datetime(want).dt.date).to_numpy()
        else:
            same = (got.astype("string").fillna("<missing>") == want.astype("string").fillna("<missing>")).to_numpy()
        if not same.all():
            problems.append(f"{name}: {int((~same).sum())} harmonised values differ from the generator's")
    return problems


@dataclass(frozen=True)
class Split:
    """One district's canonical train and test frames."""

    party: str
    train: pd.DataFrame
    test: pd.DataFrame


def split(party: str, frame: pd.DataFrame, manifest: dict[str, Any]) -> Split:
    """Stratified on the label: a district with 15 violations must not get 2 of them in its test set."""
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
    """Standardise the numeric fields (pooled-training statistics), fill missing ones with the mean, one-hot industry."""
    numeric = ((frame[list(NUMERIC)].astype(float) - mean) / std).fillna(0.0).to_numpy()
    onehot = (frame["industry"].astype("string").fillna("").to_numpy(dtype=object)[:, None] == np.array(CODES)[None, :]).astype(
        float
    )
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
    """Test AUCs keyed by (party, model, "pooled" | "alone" | "naive"), split sizes and exclusions."""

    auc: dict[tuple[str, str, str], float]
    counts: dict[str, tuple[int, int, int, int]]  # train, train positives, test, test positives
    excluded: dict[str, tuple[int, Counter[str]]]  # records in the file, excluded by reason


def load_city(seed: int, scale: float) -> tuple[list[Split], list[Split], dict[str, tuple[int, Counter[str]]]]:
    """Generate, check and harmonise every district; also read each naively. Raises CheckFailed."""
    harmonised, naive, excluded, problems = [], [], {}, []
    with tempfile.TemporaryDirectory() as tmp:
        files = generate_city(Path(tmp), seed=seed, scale=scale)
        for district in DISTRICTS:
            manifest_path = REPO / "nodes" / f"{district.party}.toml"
            with manifest_path.open("rb") as handle:
                manifest = tomllib.load(handle)
            declared = manifest["data"]["path"]
            manifest["data"]["path"] = str(files[district.party])  # the temporary copy, not examples/.../data
            frame = read_local(manifest, manifest_path.parent)
            found = [f"{manifest_path.name}: {p}" for p in check_manifest(manifest, frame, declared, files[district.party])]
            if not found:
                kept, reasons = harmonise(frame, manifest)
                truth = generate_district(district, seed=seed, scale=scale)
                found = [f"{manifest_path.name}: {p}" for p in check_against_truth(kept, reasons, truth)]
                harmonised.append(split(district.party, kept, manifest))
                naive.append(split(district.party, read_naively(frame), manifest))
                excluded[district.party] = (len(frame), reasons)
            problems += found
    if problems:
        raise CheckFailed("\n".join(problems))
    return harmonised, naive, excluded


def _standardiser(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    numeric = frame[list(NUMERIC)].astype(float)
    return numeric.mean(), numeric.std().replace(0.0, 1.0).fillna(1.0)


def evaluate(seed: int, scale: float) -> Evaluation:
    """Generate one city; compare a pooled model with each district's own, and pooled on naively read files."""
    splits, naive_splits, excluded = load_city(seed, scale)
    pooled_train = pd.concat([s.train for s in splits])
    naive_train = pd.concat([s.train for s in naive_splits])
    mean, std = _standardiser(pooled_train)
    naive_mean, naive_std = _standardiser(naive_train)

    def xy(frame: pd.DataFrame, naive: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        x = features(frame, naive_mean, naive_std) if naive else features(frame, mean, std)
        return x, torch.tensor(frame[TARGET].to_numpy(dtype=float), dtype=torch.float32)

    results: dict[tuple[str, str, str], float] = {}
    for kind in MODELS:
        pooled = train(kind, *xy(pooled_train))
        pooled_naive = train(kind, *xy(naive_train, naive=True))
        collected: dict[str, list[np.ndarray]] = {"y": [], "pooled": [], "alone": [], "naive_y": [], "naive": []}
        for s, n in zip(splits, naive_splits, strict=True):
            x_test, y_test = xy(s.test)
            xn_test, yn_test = xy(n.test, naive=True)
            alone = train(kind, *xy(s.train))
            p, a, q = scores(pooled, x_test), scores(alone, x_test), scores(pooled_naive, xn_test)
            results[(s.party, kind, "pooled")] = auc(y_test.numpy(), p)
            results[(s.party, kind, "alone")] = auc(y_test.numpy(), a)
            results[(s.party, kind, "naive")] = auc(yn_test.numpy(), q)
            for key, value in (("y", y_test.numpy()), ("pooled", p), ("alone", a), ("naive_y", yn_test.numpy()), ("naive", q)):
                collected[key].append(value)
        y_all = np.concatenate(collected["y"])
        results[("all", kind, "pooled")] = auc(y_all, np.concatenate(collected["pooled"]))
        results[("all", kind, "alone")] = auc(y_all, np.concatenate(collected["alone"]))
        results[("all", kind, "naive")] = auc(np.concatenate(collected["naive_y"]), np.concatenate(collected["naive"]))

    counts = {s.party: _counts(s.train, s.test) for s in splits}
    counts["all"] = _counts(pooled_train, pd.concat([s.test for s in splits]))
    return Evaluation(results, counts, excluded)


def _counts(train_frame: pd.DataFrame, test_frame: pd.DataFrame) -> tuple[int, int, int, int]:
    return len(train_frame), int(train_frame[TARGET].sum()), len(test_frame), int(test_frame[TARGET].sum())


def print_exclusions(excluded: dict[str, tuple[int, Counter[str]]]) -> None:
    reasons = ("missing required", "out of range", "duplicate")
    print(f"{'party':18s} {'read':>5s} {'kept':>5s} " + " ".join(f"{r:>16s}" for r in reasons) + "  excluded")
    for party, (read, counter) in excluded.items():
        gone = sum(counter.values())
        print(
            f"{party:18s} {read:5d} {read - gone:5d} " + " ".join(f"{counter[r]:16d}" for r in reasons) + f"  {gone / read:7.1%}"
        )


def print_table(aucs: dict[tuple[str, str, str], float], counts: dict[str, tuple[int, int, int, int]]) -> None:
    print(f"{'party':18s} {'train':>5s} {'pos':>4s} {'test':>5s} {'pos':>4s}", end="")
    print("".join(f"  {kind + ' pooled':>13s}  alone   diff  naive" for kind in MODELS))
    for party in [d.party for d in DISTRICTS] + ["all"]:
        line = "{:18s} {:5d} {:4d} {:5d} {:4d}".format(party, *counts[party])
        for kind in MODELS:
            p, a, n = (aucs[(party, kind, k)] for k in ("pooled", "alone", "naive"))
            line += f"  {p:13.3f} {a:6.3f} {a - p:+6.3f} {n:6.3f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Check the manifests, then pooled vs alone vs naive test AUC on the synthetic city."
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=10, help="generator seeds to average over (0: skip)")
    args = parser.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead

    try:
        first = evaluate(args.seed, args.scale)
    except CheckFailed as failure:
        print(f"the manifests and the generated files disagree:\n{failure}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"synthetic city, seed={args.seed} scale={args.scale}: every manifest harmonises its file to the generator's records")
    print_exclusions(first.excluded)
    print(f"\ntest AUC, pooled vs alone ({EPOCHS} epochs); naive = pooled on the files read naively")
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
