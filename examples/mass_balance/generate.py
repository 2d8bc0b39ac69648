"""Generate the SYNTHETIC mass-balance city: five parties' records on overlapping sets of firms.

THE DATA IS SYNTHETIC. No row describes a real firm, department or utility; every
value, including every unified social credit code (USCC), is drawn from the seeded
random process below, so the same ``--seed`` and ``--firms`` give byte-identical files.

Story: the ecology bureau wants to find firms that discharge without reporting it.
Each firm has a hidden size and an industry. An honest firm's water intake, wastewater
outflow, raw materials, output, emissions and electricity use all follow from its size
through industry ratios, with multiplicative log-normal noise. A violator breaks a mass
balance: it takes in water but reports little wastewater out (outflow 0.4-0.7 of what the
intake implies), or reports output (and so emissions) 0.4-0.7 of what its materials and
electricity imply, or both. Size varies far more than these factors, so ecology's own
columns barely show a violator; the ratios across departments (outflow / intake, output /
materials, output / electricity) do, which is why the parties would want to join.

Label: ecology's ``violation`` is an inspection outcome, not the truth. It is 1 for a
violator with probability 0.85 and for an honest firm with probability 0.02, which caps
any model's AUC near 0.89. ``PastViolations`` is a Poisson count that rises a little
with both the label and violator status (firms flagged now were often flagged before),
so ecology alone has a modest signal (AUC about 0.65-0.75 over seeds) and the joined
log-ratios a strong one (about 0.85-0.93), as the test checks.

Each party knows its own random subset of firms (``COVERAGE``), writes the key its own
way (``spell``), uses its own column names and units (``PARTIES``) and has a few quality
problems (``DUPLICATES``, ``INVALID``, ``MISSING``), so key normalisation, record linkage
and harmonisation have something real to do. ``truth.csv`` is the generator's ground truth
for tests and benchmarks only; no party ever holds it.

Run: ``python examples/mass_balance/generate.py --out examples/mass_balance/data [--firms 3000] [--seed 12]``
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from federation.psi.uscc import ALPHABET, check_character

# Per industry: share of firms; per unit of hidden size, water intake (m3/month), raw materials (t/month) and
# electricity (MWh/month); the honest ratios outflow/intake and output/materials; emissions (t) per t of output;
# median COD (mg/L); and `risk`, a mild tilt in who violates.
FIELDS = ("share", "water", "outflow", "materials", "output", "emissions", "power", "cod", "risk")
INDUSTRIES: dict[str, dict[str, float]] = {
    name: dict(zip(FIELDS, row, strict=True))
    for name, row in {
        "textiles": (0.25, 4000, 0.85, 300, 0.90, 0.004, 150, 150, 1.0),
        "paper": (0.15, 9000, 0.88, 800, 0.80, 0.006, 400, 300, 1.2),
        "food": (0.25, 3000, 0.82, 500, 0.70, 0.002, 120, 500, 0.8),
        "chemicals": (0.20, 2500, 0.80, 400, 0.85, 0.010, 300, 200, 1.3),
        "plating": (0.15, 1200, 0.90, 60, 0.95, 0.003, 90, 80, 1.1),
    }.items()
}
VIOLATOR_RATE = 0.08
LABEL_IF_VIOLATOR = 0.85  # an inspection finds most violators ...
LABEL_IF_HONEST = 0.02  # ... and wrongly flags a few honest firms
DIVISIONS = ("350102", "350103", "350104", "350105", "350111", "350121", "350181", "350203", "350206", "350582")


class Column(NamedTuple):
    """One local column: its name, its unit as the party writes it, local value per canonical value, decimals."""

    name: str
    unit: str
    factor: float
    decimals: int


class Party(NamedTuple):
    """How one party writes its file: its kind, its key column and its measures (canonical field -> local column)."""

    kind: str
    key: str
    columns: dict[str, Column]


# Canonical units: m3/month, mg/L, t/month, MWh/month. `factor` turns a canonical value into the local one.
PARTIES: dict[str, Party] = {
    "ecology-bureau": Party(
        "department",
        "CreditCode",
        {
            "outflow": Column("OutflowVolume", "m3/month", 1.0, 1),
            "cod": Column("CODConc", "mg/L", 1.0, 1),
            "emissions": Column("EmissionsReported", "t/month", 1.0, 4),
        },
    ),
    "water-bureau": Party("department", "uscc", {"intake": Column("intake_per_day", "m3/day", 1 / 30, 2)}),
    "commerce-bureau": Party("department", "entity_code", {"materials": Column("raw_material_kg", "kg/month", 1000.0, 0)}),
    "statistics-bureau": Party("department", "org_code", {"output": Column("annual_output", "t/year", 12.0, 2)}),
    "power-utility": Party("firm", "legacy_reg_no", {"electricity": Column("kwh", "kWh/month", 1000.0, 0)}),
}
COVERAGE = {
    "ecology-bureau": 0.90,
    "water-bureau": 0.85,
    "commerce-bureau": 0.75,
    "statistics-bureau": 0.80,
    "power-utility": 0.70,
}
DUPLICATES = {"commerce-bureau": 0.01, "statistics-bureau": 0.01}  # extra copies of rows, each copy's key spelled anew
INVALID = {"ecology-bureau": 0.005, "water-bureau": 0.005}  # rows whose code has a wrong check character
MISSING = 0.02  # share of each measure's cells left empty
CROSSWALK_UNMAPPED = 0.01  # power's legacy numbers the crosswalk lacks
CROSSWALK_INVALID = 0.005  # crosswalk entries with a wrong check character
CROSSWALK = "power-utility-crosswalk.csv"
TRUTH = "truth.csv"


def count(rate: float, n: int) -> int:
    """How many of `n` rows get a problem of this rate: at least one when the rate is positive, so it always occurs."""
    return max(1, round(rate * n)) if rate > 0 else 0


def uscc_codes(rng: np.random.Generator, n: int) -> list[str]:
    """Distinct valid codes: '9' (registered with market regulation), a firm type, a division code, 9 characters, check."""
    codes: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        body = "9" + str(rng.choice(["1", "2", "3"], p=[0.85, 0.10, 0.05])) + str(rng.choice(DIVISIONS))
        body += "".join(ALPHABET[i] for i in rng.integers(0, len(ALPHABET), 9))
        code = body + check_character(body)
        if code not in codes:
            codes.add(code)
            out.append(code)
    return out


def legacy_numbers(rng: np.random.Generator, codes: list[str]) -> list[str]:
    """Distinct 15-digit pre-2015 registration numbers: the firm's division code and 9 digits (no check digit modelled)."""
    seen: set[str] = set()
    out: list[str] = []
    for code in codes:
        number = code[2:8] + "".join(str(d) for d in rng.integers(0, 10, 9))
        while number in seen:
            number = code[2:8] + "".join(str(d) for d in rng.integers(0, 10, 9))
        seen.add(number)
        out.append(number)
    return out


def corrupt(rng: np.random.Generator, code: str) -> str:
    """The code with a different, wrong check character (a typo the check character catches)."""
    wrong = [c for c in ALPHABET if c != code[17]]
    return code[:17] + wrong[int(rng.integers(0, len(wrong)))]


def draw_firms(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Every firm's hidden size, industry and violator status, and what it reports in canonical units."""
    names = list(INDUSTRIES)
    share = np.array([INDUSTRIES[i]["share"] for i in names])
    ind = rng.choice(len(names), size=n, p=share / share.sum())
    par = {k: np.array([INDUSTRIES[i][k] for i in names])[ind] for k in FIELDS}
    size = rng.lognormal(0.0, 0.8, n)
    tilt = size**0.2 * par["risk"]  # larger firms and some industries violate a little more often
    violator = rng.random(n) < VIOLATOR_RATE * tilt / tilt.mean()
    kind = rng.random(n)
    hides_water = violator & (kind < 0.7)
    hides_output = violator & (kind >= 0.4)

    def noise(sd: float) -> np.ndarray:
        return rng.lognormal(0.0, sd, n)

    intake = par["water"] * size * noise(0.2)
    outflow = par["outflow"] * intake * noise(0.15) * np.where(hides_water, rng.uniform(0.4, 0.7, n), 1.0)
    materials = par["materials"] * size * noise(0.2)
    output = par["output"] * materials * noise(0.15) * np.where(hides_output, rng.uniform(0.4, 0.7, n), 1.0)
    label = np.where(violator, rng.random(n) < LABEL_IF_VIOLATOR, rng.random(n) < LABEL_IF_HONEST)
    codes = uscc_codes(rng, n)
    return pd.DataFrame(
        {
            "uscc": codes,
            "legacy": legacy_numbers(rng, codes),
            "industry": np.array(names)[ind],
            "violator": violator.astype(int),
            "intake": intake,
            "outflow": outflow,
            "cod": par["cod"] * noise(0.3),
            "emissions": par["emissions"] * output * noise(0.2),  # consistent with the output it reports
            "materials": materials,
            "output": output,
            "electricity": par["power"] * size * noise(0.2),
            "past_violations": rng.poisson(0.4 + 0.5 * label + 0.3 * violator),  # a weak echo of past inspections
            "violation": label.astype(int),
        }
    )


def spell(rng: np.random.Generator, party: str, code: str) -> str:
    """The code as this party writes it: that each party differs is the point of key normalisation."""
    if party == "water-bureau":
        return code.lower()
    if party == "commerce-bureau":
        if rng.random() < 0.5:
            return "-".join(code[i : i + 4] for i in range(0, 18, 4))
        return f"{code[:2]} {code[2:8]} {code[8:]}"
    if party == "statistics-bureau":
        full = rng.random() < 0.3
        return f" {''.join(chr(ord(c) + 0xFEE0) for c in code) if full else code} "
    return code


def party_frame(rng: np.random.Generator, everyone: pd.DataFrame, party: str) -> pd.DataFrame:
    """One party's file: its subset of firms, its key spelling, columns and units, its quality problems, shuffled."""
    spec = PARTIES[party]
    rows = everyone.iloc[np.sort(rng.choice(len(everyone), round(COVERAGE[party] * len(everyone)), replace=False))]
    extra = rng.choice(len(rows), count(DUPLICATES.get(party, 0.0), len(rows)), replace=False)
    rows = pd.concat([rows, rows.iloc[extra]], ignore_index=True)
    keys = rows["legacy"].tolist() if party == "power-utility" else rows["uscc"].tolist()
    for i in rng.choice(len(rows), count(INVALID.get(party, 0.0), len(rows)), replace=False):
        keys[i] = corrupt(rng, keys[i])
    frame = pd.DataFrame({spec.key: [k if party == "power-utility" else spell(rng, party, k) for k in keys]})
    for field, col in spec.columns.items():
        values = (rows[field] * col.factor).round(col.decimals).mask(rng.random(len(rows)) < MISSING)
        frame[col.name] = values.astype("Int64") if col.decimals == 0 else values
    if party == "ecology-bureau":
        frame["PastViolations"] = rows["past_violations"].to_numpy()
        frame["violation"] = rows["violation"].to_numpy()
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


def crosswalk(rng: np.random.Generator, everyone: pd.DataFrame, power: pd.DataFrame) -> pd.DataFrame:
    """The power utility's legacy number -> USCC table: most of its firms, a few missing, a few mistyped."""
    uscc = dict(zip(everyone["legacy"], everyone["uscc"], strict=True))
    legacy = sorted(set(power[PARTIES["power-utility"].key]))
    dropped = set(rng.choice(len(legacy), count(CROSSWALK_UNMAPPED, len(legacy)), replace=False).tolist())
    kept = [number for i, number in enumerate(legacy) if i not in dropped]
    codes = [uscc[number] for number in kept]
    for i in rng.choice(len(codes), count(CROSSWALK_INVALID, len(codes)), replace=False):
        codes[i] = corrupt(rng, codes[i])
    table = pd.DataFrame({"legacy_registration_number": kept, "uscc": codes})
    return table.iloc[rng.permutation(len(table))].reset_index(drop=True)


def generate(out: Path, *, firms: int = 3000, seed: int = 12) -> dict[str, Path]:
    """Write the five party files, the crosswalk and the ground truth to `out`; return their paths by name."""
    if firms < 100:
        raise ValueError("at least 100 firms, so that every party has rows and every quality problem a few")
    out.mkdir(parents=True, exist_ok=True)
    everyone = draw_firms(np.random.default_rng([seed, 0]), firms)
    paths: dict[str, Path] = {}
    frames: dict[str, pd.DataFrame] = {}
    for i, party in enumerate(PARTIES, start=1):
        frames[party] = party_frame(np.random.default_rng([seed, i]), everyone, party)
    frames[CROSSWALK.removesuffix(".csv")] = crosswalk(np.random.default_rng([seed, 99]), everyone, frames["power-utility"])
    frames[TRUTH.removesuffix(".csv")] = everyone[["uscc", "industry", "violator"]]
    for name, frame in frames.items():
        paths[name] = out / f"{name}.csv"
        frame.to_csv(paths[name], index=False, lineterminator="\n", encoding="utf-8")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="directory for the party files, crosswalk and truth")
    parser.add_argument("--firms", type=int, default=3000, help="number of firms in the city (at least 3,000 intended)")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    for name, path in generate(args.out, firms=args.firms, seed=args.seed).items():
        print(f"{name:24s} {path.read_text(encoding='utf-8').count(chr(10)) - 1:6d} rows  {path}")


if __name__ == "__main__":
    main()
