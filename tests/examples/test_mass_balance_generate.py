"""examples/mass_balance/generate.py: the synthetic five-party city has the coverage, key spellings, quality problems and
cross-department signal its docstring claims, and the same seed gives the same files."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from federation.psi.uscc import normalise, prepare_keys, problem

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "mass_balance" / "generate.py"
PARTY_FILES = ("ecology-bureau", "water-bureau", "commerce-bureau", "statistics-bureau", "power-utility")


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mass_balance_generate", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load()


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return gen.generate(tmp_path_factory.mktemp("mass_balance"), firms=3000, seed=12)


def read(paths: dict[str, Path], name: str) -> pd.DataFrame:
    key = gen.PARTIES[name].key if name in gen.PARTIES else None
    # Keys stay strings exactly as written (no stripping, no numeric parsing of legacy numbers).
    return pd.read_csv(paths[name], dtype={key: str} if key else None, keep_default_na=True)


def crosswalk(paths: dict[str, Path]) -> dict[str, str]:
    table = pd.read_csv(paths["power-utility-crosswalk"], dtype=str)
    return {legacy: normalise(code) for legacy, code in zip(table["legacy_registration_number"], table["uscc"], strict=True)}


def canonical(paths: dict[str, Path], name: str) -> pd.DataFrame:
    """A party's rows with a valid normalised code (power's through the crosswalk), first copy of each, canonical units."""
    frame = read(paths, name)
    raw = frame[gen.PARTIES[name].key]
    codes = raw.map(crosswalk(paths)).fillna("") if name == "power-utility" else raw.map(normalise)
    frame = frame.assign(code=codes)[codes.map(problem).isna()].drop_duplicates("code").set_index("code")
    for field, col in gen.PARTIES[name].columns.items():
        frame[field] = frame[col.name] / col.factor
    return frame


def test_every_file_is_written_and_the_city_has_at_least_3000_firms(city: dict[str, Path]) -> None:
    assert set(city) == {*PARTY_FILES, "power-utility-crosswalk", "truth"}
    assert all(path.is_file() and path.name == f"{name}.csv" for name, path in city.items())
    truth = read(city, "truth")
    assert len(truth) >= 3000 and truth["uscc"].is_unique
    assert all(problem(code) is None for code in truth["uscc"])
    assert 0.06 < truth["violator"].mean() < 0.10


@pytest.mark.parametrize("name", PARTY_FILES)
def test_each_party_knows_between_60_and_95_percent_of_the_firms(city: dict[str, Path], name: str) -> None:
    known = set(canonical(city, name).index) & set(read(city, "truth")["uscc"])
    assert 0.60 <= len(known) / len(read(city, "truth")) <= 0.95


def test_each_party_spells_the_key_its_own_way_and_normalisation_recovers_valid_codes(city: dict[str, Path]) -> None:
    keys = {name: read(city, name)[gen.PARTIES[name].key] for name in PARTY_FILES}
    assert keys["ecology-bureau"].str.fullmatch(r"[0-9A-Z]{18}").mean() == 1.0
    assert (keys["water-bureau"] == keys["water-bureau"].str.lower()).all()
    assert keys["water-bureau"].str.contains("[a-z]").mean() > 0.9
    assert keys["commerce-bureau"].str.contains("-").any() and keys["commerce-bureau"].str.contains(" ").any()
    full_width = keys["statistics-bureau"].map(lambda k: any(ord(c) > 0xFF00 for c in k))
    assert 0.1 < full_width.mean() < 0.9 and keys["statistics-bureau"].str.startswith(" ").all()
    assert keys["power-utility"].str.fullmatch(r"[0-9]{15}").all()
    truth = set(read(city, "truth")["uscc"])
    for name in PARTY_FILES[:4]:
        valid = [code for code in keys[name].map(normalise) if problem(code) is None]
        assert len(valid) > 0.9 * len(keys[name]) and set(valid) <= truth


def test_duplicates_and_invalid_codes_occur_where_the_generator_says(city: dict[str, Path]) -> None:
    reports = {name: prepare_keys(read(city, name)[gen.PARTIES[name].key])[1] for name in PARTY_FILES[:4]}
    for name, report in reports.items():
        assert (report.duplicates > 0) == (name in gen.DUPLICATES), name
        assert (report.invalid["wrong check character"] > 0) == (name in gen.INVALID), name
        assert set(report.invalid) <= {"wrong check character"}
    walk = pd.read_csv(city["power-utility-crosswalk"], dtype=str)
    assert prepare_keys(walk["uscc"])[1].invalid["wrong check character"] > 0
    legacy = set(read(city, "power-utility")["legacy_reg_no"])
    assert set(walk["legacy_registration_number"]) <= legacy
    assert 0 < len(legacy - set(walk["legacy_registration_number"])) < 0.03 * len(legacy)


def fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float = 1e-2) -> np.ndarray:
    """Newton's method on standardised features with an intercept and a little ridge; returns the weights."""
    w = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ w))
        hessian = x.T @ (x * (p * (1 - p))[:, None]) + ridge * np.eye(len(w))
        step = np.linalg.solve(hessian, x.T @ (y - p) - ridge * w)
        w += step
        if np.abs(step).max() < 1e-8:
            break
    return w


def auc(score: np.ndarray, y: np.ndarray) -> float:
    ranks = rankdata(score)
    pos = y == 1
    return float((ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum()))


def cross_validated_auc(features: pd.DataFrame, y: np.ndarray, folds: int = 5) -> float:
    """Out-of-fold AUC, so more features cannot win by fitting noise."""
    x = features.to_numpy(dtype=float)
    fold = np.random.default_rng(0).permutation(len(y)) % folds
    score = np.empty(len(y))
    for k in range(folds):
        train = fold != k
        mean, sd = x[train].mean(axis=0), x[train].std(axis=0)
        design = np.column_stack([np.ones(len(y)), (x - mean) / sd])
        score[~train] = design[~train] @ fit_logistic(design[train], y[train])
    return auc(score, y)


AUCS: dict[str, float] = {}


def test_joined_departments_reveal_violators_that_ecology_alone_barely_sees(city: dict[str, Path]) -> None:
    parts = [canonical(city, name) for name in PARTY_FILES]
    joined = pd.concat(parts, axis=1, join="inner").dropna(subset=[*gen.PARTIES["ecology-bureau"].columns, "intake"])
    joined = joined.dropna(subset=["materials", "output", "electricity"])
    assert len(joined) > 500
    log = np.log(joined[["outflow", "cod", "emissions", "intake", "materials", "output", "electricity"]])
    ecology = pd.DataFrame(
        {"outflow": log["outflow"], "cod": log["cod"], "emissions": log["emissions"], "past": joined["PastViolations"]}
    )
    ratios = pd.DataFrame(
        {
            "outflow/intake": log["outflow"] - log["intake"],
            "output/materials": log["output"] - log["materials"],
            "output/electricity": log["output"] - log["electricity"],
            "emissions/output": log["emissions"] - log["output"],
            "materials/electricity": log["materials"] - log["electricity"],
            "past": joined["PastViolations"],
        }
    )
    y = joined["violation"].to_numpy(dtype=float)
    AUCS["ecology"], AUCS["joined"] = cross_validated_auc(ecology, y), cross_validated_auc(ratios, y)
    print(f"\n{len(joined)} firms known to all five, {int(y.sum())} labelled violations; AUC {AUCS}")
    assert 0.5 < AUCS["ecology"] <= 0.75
    assert AUCS["joined"] >= 0.85 and AUCS["joined"] - AUCS["ecology"] >= 0.1


def test_the_same_seed_gives_the_same_files(city: dict[str, Path], tmp_path: Path) -> None:
    again = gen.generate(tmp_path / "again", firms=3000, seed=12)
    assert all(again[name].read_bytes() == city[name].read_bytes() for name in city)
    other = gen.generate(tmp_path / "other", firms=3000, seed=13)
    assert other["ecology-bureau"].read_bytes() != city["ecology-bureau"].read_bytes()
