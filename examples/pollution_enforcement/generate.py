"""Generate the SYNTHETIC pollution-enforcement city: six district offices' inspection records.

THE DATA IS SYNTHETIC. No record describes a real firm, inspection or district; every
value is drawn from the seeded random process below, so the same ``--seed`` and
``--scale`` always give byte-identical files.

Story: each district's environmental protection office holds monitoring and
production records on the firms in its district. One record is one inspection of a
firm; the task is to predict, from the records available before the visit, whether
the inspection will find a violation (``violation``, 0/1).

How a record is generated (all districts share steps 2-4, which is what makes
federation worthwhile):

1. District covariate shift. Each district has its own industry mix, firm-size
   distribution, plant age (a shift in discharge concentrations) and inspection
   frequency. Small districts see only part of the feature space.
2. Firm. An unobserved compliance culture ``u ~ N(0, 1)`` drives discharge levels,
   past violations and the chance that the treatment plant is bypassed.
   Employees are log-normal; production, energy and wastewater flow follow from
   employees through industry-specific intensities. A bypassed treatment plant
   uses less energy per tonne and discharges more COD.
3. Monitoring. COD and NH3-N are log-normal around industry-specific levels;
   pH is normal around an industry-specific mean.
4. Ground truth, one logistic model shared by all districts (``_draw_records``).
   The log-odds rise with COD *above the industry's own limit* (a hinge, steeper
   for large flows, so industry and concentration interact), NH3-N above its
   limit, pH outside 6-9, past violations, time since the last inspection, low
   energy use per tonne (treatment switched off) and output per employee, fall
   with firm size, and carry industry effects plus the hidden bypass, culture and
   a little pure noise. Only the intercept is district-specific: it is calibrated
   by bisection on a separate large sample so that each district's expected
   violation rate matches its target (6%-25%).
5. Labels are Bernoulli draws from that probability. Because culture and bypass
   are hidden, a model on the released fields reaches a test AUC of about
   0.82-0.84 pooled (``check_data.py``); a district with ~10 violations cannot
   learn the shared pattern alone.

Each district then writes its file with its own local column names (see
``LOCAL_COLUMNS``; the manifests in ``nodes/`` map them back) in CSV or Parquet,
and adds a ``firm_name`` column, an identifier a department would never release and
that is not a feature. Units and industry codes are canonical everywhere for now.

``scale`` multiplies every district's size (at least ``MIN_RECORDS`` each). If a
small draw has fewer than ``MIN_POSITIVES`` violations, some negatives are swapped
for positive records drawn from the same district; swapping on the label only
moves the logistic intercept, so the shared model stays the same.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

INDUSTRIES: tuple[str, ...] = ("chemical", "paper", "food", "metal", "textile")
MIN_RECORDS = 60
MIN_POSITIVES = 8
_CALIBRATION_SAMPLE = 20_000


@dataclass(frozen=True)
class Industry:
    """Per-industry process constants; discharge limits are what the ground truth compares against."""

    cod_median: float  # mg/L
    cod_limit: float  # mg/L
    nh3n_median: float  # mg/L
    nh3n_limit: float  # mg/L
    ph_mean: float
    ph_sd: float
    tonnes_per_employee: float  # per month
    water_per_tonne: float  # m3 of wastewater per tonne of output
    mwh_per_tonne: float
    effect: float  # shared log-odds offset for the industry


INDUSTRY: dict[str, Industry] = {
    "chemical": Industry(70.0, 100.0, 8.0, 15.0, 7.0, 0.9, 2.0, 20.0, 0.9, 0.4),
    "paper": Industry(110.0, 150.0, 4.0, 8.0, 7.3, 0.5, 4.0, 80.0, 0.6, 0.0),
    "food": Industry(55.0, 100.0, 9.0, 15.0, 6.9, 0.5, 3.0, 12.0, 0.3, -0.3),
    "metal": Industry(35.0, 60.0, 3.0, 8.0, 6.6, 1.0, 1.5, 8.0, 1.5, 0.2),
    "textile": Industry(80.0, 120.0, 6.0, 12.0, 7.8, 0.6, 1.0, 40.0, 0.4, 0.1),
}


@dataclass(frozen=True)
class District:
    """What differs between districts: size, label rate, covariates and file format."""

    party: str
    records: int  # at scale 1.0
    violation_rate: float  # target expected rate; the intercept is calibrated to it
    industry_mix: tuple[float, float, float, float, float]  # in INDUSTRIES order
    employees_median: float
    plant_age_shift: float  # added to log COD/NH3-N: older plants discharge more
    days_mean: float  # mean days since the last inspection
    file_format: str  # "csv" | "parquet"


DISTRICTS: tuple[District, ...] = (
    District("central-district", 4000, 0.12, (0.15, 0.10, 0.35, 0.15, 0.25), 90.0, 0.00, 300.0, "csv"),
    District("harbour-district", 2500, 0.25, (0.45, 0.10, 0.10, 0.30, 0.05), 200.0, 0.10, 260.0, "parquet"),
    District("north-district", 1200, 0.10, (0.10, 0.35, 0.30, 0.10, 0.15), 60.0, -0.10, 400.0, "csv"),
    District("east-district", 500, 0.15, (0.20, 0.05, 0.15, 0.45, 0.15), 70.0, 0.05, 450.0, "parquet"),
    District("hills-district", 250, 0.06, (0.05, 0.40, 0.40, 0.05, 0.10), 30.0, 0.20, 600.0, "csv"),
    District("river-district", 150, 0.08, (0.15, 0.10, 0.10, 0.10, 0.55), 40.0, 0.15, 550.0, "parquet"),
)

# Canonical field -> the district's own column name. nodes/<party>.toml repeats this
# mapping in [data.columns]; check_data.py fails if the two disagree.
LOCAL_COLUMNS: dict[str, dict[str, str]] = {
    "central-district": {
        "cod": "COD_mgL",
        "nh3n": "NH3N_mgL",
        "flow": "flow_m3d",
        "ph": "pH",
        "production": "production_t",
        "energy": "energy_MWh",
        "employees": "employees",
        "past_violations": "prior_violations_3y",
        "days_since_inspection": "days_since_last_insp",
        "industry": "industry_code",
        "violation": "violation_found",
    },
    "harbour-district": {
        "cod": "chem_oxygen_demand",
        "nh3n": "ammonia_nitrogen",
        "flow": "wastewater_flow",
        "ph": "ph_value",
        "production": "monthly_output_tonnes",
        "energy": "monthly_energy_mwh",
        "employees": "headcount",
        "past_violations": "violations_last_3y",
        "days_since_inspection": "days_since_last_inspection",
        "industry": "firm_sector",
        "violation": "insp_result",
    },
    "north-district": {
        "cod": "CODcr",
        "nh3n": "NH3_N",
        "flow": "Q_wastewater",
        "ph": "PH",
        "production": "prod_tpm",
        "energy": "elec_mwh",
        "employees": "staff",
        "past_violations": "hist_viol",
        "days_since_inspection": "insp_gap_days",
        "industry": "sector",
        "violation": "outcome",
    },
    "east-district": {
        "cod": "cod_concentration",
        "nh3n": "ammonia",
        "flow": "discharge_volume",
        "ph": "acidity_ph",
        "production": "output_t",
        "energy": "energy_use",
        "employees": "n_employees",
        "past_violations": "previous_violations",
        "days_since_inspection": "days_since_visit",
        "industry": "industry_type",
        "violation": "non_compliant",
    },
    "hills-district": {
        "cod": "COD",
        "nh3n": "NH3N",
        "flow": "Flow",
        "ph": "pH_level",
        "production": "Production",
        "energy": "Energy",
        "employees": "Employees",
        "past_violations": "PastViolations",
        "days_since_inspection": "DaysSinceInspection",
        "industry": "Industry",
        "violation": "Violation",
    },
    "river-district": {
        "cod": "cod_mg_l",
        "nh3n": "nh3_n_mg_l",
        "flow": "effluent_flow_m3_per_day",
        "ph": "ph",
        "production": "production_tonnes",
        "energy": "energy_mwh",
        "employees": "workforce",
        "past_violations": "violations_3yr",
        "days_since_inspection": "days_since_check",
        "industry": "sector_code",
        "violation": "violation_flag",
    },
}


def _draw_records(rng: np.random.Generator, district: District, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Draw ``n`` canonical records and their log-odds *without* the district intercept."""
    codes = rng.choice(len(INDUSTRIES), size=n, p=np.asarray(district.industry_mix))
    ind = [INDUSTRY[INDUSTRIES[c]] for c in codes]

    def per_industry(attr: str) -> np.ndarray:
        return np.array([getattr(i, attr) for i in ind])

    culture = rng.normal(0.0, 1.0, n)  # hidden: higher = worse compliance
    bypass = rng.random(n) < 1.0 / (1.0 + np.exp(-(-2.6 + 0.9 * culture)))

    employees = np.maximum(3, np.round(district.employees_median * rng.lognormal(0.0, 0.8, n))).astype(np.int64)
    production = employees * per_industry("tonnes_per_employee") * rng.lognormal(0.0, 0.3, n)
    energy = production * per_industry("mwh_per_tonne") * rng.lognormal(0.0, 0.2, n) * np.where(bypass, 0.65, 1.0)
    flow = production / 30.0 * per_industry("water_per_tonne") * rng.lognormal(0.0, 0.3, n)  # m3/day

    cod_noise = rng.normal(0.0, 0.4, n)
    cod = per_industry("cod_median") * np.exp(district.plant_age_shift + 0.2 * culture + cod_noise + np.where(bypass, 0.6, 0.0))
    nh3n = per_industry("nh3n_median") * np.exp(
        district.plant_age_shift + 0.5 * cod_noise + 0.1 * culture + rng.normal(0.0, 0.35, n)
    )
    ph = per_industry("ph_mean") + per_industry("ph_sd") * rng.normal(0.0, 1.0, n)
    past_violations = rng.poisson(np.exp(-1.0 + 0.7 * culture))
    days = np.clip(np.round(rng.gamma(3.0, district.days_mean / 3.0, n)), 14, 2000).astype(np.int64)

    cod_excess = np.log(cod / per_industry("cod_limit"))
    nh3n_excess = np.log(nh3n / per_industry("nh3n_limit"))
    energy_ratio = np.log(energy / (production * per_industry("mwh_per_tonne")))
    load = 1.0 + 0.5 * np.clip(np.log10(flow / 50.0), -1.0, 2.0)
    logit = (
        0.2 * cod_excess
        + 2.2 * np.maximum(cod_excess, 0.0) * load
        + 0.4 * nh3n_excess
        + 1.5 * np.maximum(nh3n_excess, 0.0)
        + 1.0 * np.maximum(np.abs(ph - 7.5) - 1.5, 0.0)
        + 0.8 * np.log1p(past_violations)
        + 0.6 * np.log(days / 365.0)
        - 2.5 * energy_ratio
        - 0.4 * np.log(employees / 50.0)  # larger firms employ environmental managers
        + 0.3 * np.log(production / employees / per_industry("tonnes_per_employee"))  # pushing output
        + per_industry("effect")
        + 0.8 * bypass
        + 1.0 * culture
        + rng.normal(0.0, 0.3, n)  # what the records cannot show: the inspector, the day
    )
    frame = pd.DataFrame(
        {
            "cod": np.round(cod, 1),
            "nh3n": np.round(nh3n, 2),
            "flow": np.round(flow, 1),
            "ph": np.round(np.clip(ph, 1.0, 13.0), 2),
            "production": np.round(production, 1),
            "energy": np.round(energy, 1),
            "employees": employees,
            "past_violations": past_violations.astype(np.int64),
            "days_since_inspection": days,
            "industry": [INDUSTRIES[c] for c in codes],
        }
    )
    return frame, logit


def _calibrate_intercept(rng: np.random.Generator, district: District) -> float:
    """Find the intercept whose expected violation rate in this district equals its target."""
    _, logit = _draw_records(rng, district, _CALIBRATION_SAMPLE)
    lo, hi = -15.0, 15.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        rate = float(np.mean(1.0 / (1.0 + np.exp(-(logit + mid)))))
        lo, hi = (mid, hi) if rate < district.violation_rate else (lo, mid)
    return (lo + hi) / 2.0


def generate_district(district: District, *, seed: int, scale: float) -> pd.DataFrame:
    """Return one district's records with canonical column names plus ``firm_name``."""
    index = [d.party for d in DISTRICTS].index(district.party)
    intercept = _calibrate_intercept(np.random.default_rng([seed, index, 0]), district)
    rng = np.random.default_rng([seed, index, 1])
    n = max(MIN_RECORDS, round(district.records * scale))

    frame, logit = _draw_records(rng, district, n)
    frame["violation"] = (rng.random(n) < 1.0 / (1.0 + np.exp(-(logit + intercept)))).astype(np.int64)

    missing = MIN_POSITIVES - int(frame["violation"].sum())
    if missing > 0:
        extra, extra_logit = _draw_records(rng, district, 50 * n)
        hit = rng.random(len(extra)) < 1.0 / (1.0 + np.exp(-(extra_logit + intercept)))
        positives = extra[hit].head(missing).assign(violation=1)
        if len(positives) < missing:
            raise RuntimeError(f"{district.party}: could not draw {missing} extra violations")
        negatives = rng.choice(np.flatnonzero(frame["violation"].to_numpy() == 0), size=missing, replace=False)
        for column in frame.columns:
            frame.loc[frame.index[negatives], column] = positives[column].to_numpy()

    width = max(4, len(str(2 * n)))
    firm_numbers = rng.permutation(10**width)[:n]
    frame.insert(0, "firm_name", [f"Firm {k:0{width}d}" for k in firm_numbers])
    return frame


def generate_city(out_dir: Path, *, seed: int = 7, scale: float = 1.0) -> dict[str, Path]:
    """Write every district's file under ``out_dir`` in its own columns and format; return party -> path."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for district in DISTRICTS:
        frame = generate_district(district, seed=seed, scale=scale)
        local = frame.rename(columns=LOCAL_COLUMNS[district.party])
        path = out_dir / f"{district.party}.{district.file_format}"
        if district.file_format == "csv":
            local.to_csv(path, index=False)
        else:
            local.to_parquet(path, index=False, engine="pyarrow")
        written[district.party] = path
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="directory for the six district files")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every district's size")
    args = parser.parse_args()
    for party, path in generate_city(args.out, seed=args.seed, scale=args.scale).items():
        print(f"{party:18s} {path}")


if __name__ == "__main__":
    main()
