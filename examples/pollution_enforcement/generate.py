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

Steps 1-5 use the random streams ``[seed, district, 0]`` and ``[seed, district, 1]``
and are unchanged by how a district records its data. How it records them uses a
third stream, ``[seed, district, 2]`` (``RECORDING`` describes each district):

6. Recording. Every record gets an ``inspection_date`` in 2023-2024 and a
   ``firm_id``. Some districts' instruments drift (COD reads a bias that grows
   linearly over the period; the recorded value, not the true one, is in the
   file, and no mapping can undo it). Optional measurements (``nh3n``,
   ``energy``, ``employees``) are sometimes left empty.
7. Quality problems, drawn as *extra* records so that a correct harmonisation
   gives back exactly the records of steps 1-6: a few negative flows (a sign
   error), pH values outside 0-14 (a slipped decimal point), records with a
   required value missing, and records entered twice (same ``firm_id`` and
   ``inspection_date``, the copy right after the original).
8. Local standard. Each district writes its file with its own column names,
   units, industry codes (one district changed its code list on 1 July 2024),
   date format and missing-value marker, as CSV, Parquet or SQLite. The local
   columns follow the schema's field order, so a reader that matches columns by
   position gets the right measure in the wrong unit or code; ``firm_name`` (an
   identifier, never a feature) comes last. The manifests in ``nodes/`` declare
   all of this; ``check_data.py`` harmonises every file through its manifest
   and compares the result with the records of steps 1-6.

``scale`` multiplies every district's size (at least ``MIN_RECORDS`` each). If a
small draw has fewer than ``MIN_POSITIVES`` violations, some negatives are swapped
for positive records drawn from the same district; swapping on the label only
moves the logistic intercept, so the shared model stays the same.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sqlite3
import tomllib
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pint

SCHEMA_PATH = Path(__file__).resolve().parent / "schema.toml"
INDUSTRIES: tuple[str, ...] = ("chemical", "paper", "food", "metal", "textile")
MIN_RECORDS = 60
MIN_POSITIVES = 8
_CALIBRATION_SAMPLE = 20_000

PERIOD_START = dt.date(2023, 1, 1)
PERIOD_END = dt.date(2024, 12, 31)
SQLITE_TABLE = "inspections"

# Quality problems per clean record (each at least one per district; rounded up).
NEGATIVE_FLOW_RATE = 0.003
BAD_PH_RATE = 0.003
MISSING_REQUIRED_RATE = 0.004
DUPLICATE_RATE = 0.008
# Decimals a district keeps for a value in its own unit (the canonical values have 1-2).
LOCAL_DECIMALS: dict[str, int] = {"g/m^3": 2, "g/L": 4, "ug/L": 0, "L/s": 4, "kg/day": 1, "kWh/month": 0}
# Required features that a careless entry may leave empty.
BLANKABLE = ("cod", "flow", "ph", "production", "past_violations", "days_since_inspection", "industry")


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
    """What differs between districts in the ground truth: size, label rate and covariates."""

    party: str
    records: int  # at scale 1.0
    violation_rate: float  # target expected rate; the intercept is calibrated to it
    industry_mix: tuple[float, float, float, float, float]  # in INDUSTRIES order
    employees_median: float
    plant_age_shift: float  # added to log COD/NH3-N: older plants discharge more
    days_mean: float  # mean days since the last inspection


DISTRICTS: tuple[District, ...] = (
    District("central-district", 4000, 0.12, (0.15, 0.10, 0.35, 0.15, 0.25), 90.0, 0.00, 300.0),
    District("harbour-district", 2500, 0.25, (0.45, 0.10, 0.10, 0.30, 0.05), 200.0, 0.10, 260.0),
    District("north-district", 1200, 0.10, (0.10, 0.35, 0.30, 0.10, 0.15), 60.0, -0.10, 400.0),
    District("east-district", 500, 0.15, (0.20, 0.05, 0.15, 0.45, 0.15), 70.0, 0.05, 450.0),
    District("hills-district", 250, 0.06, (0.05, 0.40, 0.40, 0.05, 0.10), 30.0, 0.20, 600.0),
    District("river-district", 150, 0.08, (0.15, 0.10, 0.10, 0.10, 0.55), 40.0, 0.15, 550.0),
)


@dataclass(frozen=True)
class Recording:
    """How one district records its data: the local standard that its manifest declares.

    ``nodes/<party>.toml`` repeats all of this in the manifest format; check_data.py
    harmonises each file through its manifest and fails if the two disagree.
    """

    file_format: str  # "csv" | "parquet" | "sqlite"
    columns: Mapping[str, str]  # canonical field -> local column, for every field of the schema
    date_format: str  # strptime format of the local date column
    id_prefix: str  # local firm identifiers look like f"{id_prefix}{number:05d}"
    units: Mapping[str, str] = field(default_factory=dict)  # field -> local unit, where not the schema's
    codes: Mapping[str, str] = field(default_factory=dict)  # canonical industry -> local code (empty: as canonical)
    old_codes: Mapping[str, str] = field(default_factory=dict)  # the code list used until code_change
    code_change: dt.date | None = None  # records dated up to and including this day use old_codes
    missing_marker: str | None = ""  # what a missing value looks like; None: a null in a typed file
    column_missing: Mapping[str, str] = field(default_factory=dict)  # field -> its own missing marker
    optional_missing: Mapping[str, float] = field(default_factory=dict)  # optional field -> fraction left empty
    drift: Mapping[str, float] = field(default_factory=dict)  # field -> relative bias at the end of the period
    not_null: bool = False  # the database refuses empty required fields (no missing-required records)


def _columns(spaced: str) -> dict[str, str]:
    """Local column names, separated by spaces and given in the schema's field order."""
    names = spaced.split()
    fields = [f["name"] for f in _schema()["field"]]
    if len(names) != len(fields):
        raise ValueError(f"{len(names)} local columns for {len(fields)} schema fields")
    return dict(zip(fields, names, strict=True))


def _schema() -> dict:  # type: ignore[type-arg]
    with SCHEMA_PATH.open("rb") as handle:
        return tomllib.load(handle)


RECORDING: dict[str, Recording] = {
    # The reference: canonical units and code words, ISO dates, empty cells for missing values.
    "central-district": Recording(
        file_format="csv",
        columns=_columns(
            "firm_id insp_date COD_mgL NH3N_mgL flow_m3d pH production_t energy_MWh employees prior_violations_3y "
            "days_since_last_insp industry_code violation_found"
        ),
        date_format="%Y-%m-%d",
        id_prefix="CEN-",
        missing_marker="",
        optional_missing={"nh3n": 0.03, "energy": 0.02},
    ),
    # Port conventions: COD in g/L (its labs test high-strength effluent), NH3-N in g/m^3, output in
    # kg/day, abbreviated sectors, day/month/year dates.
    "harbour-district": Recording(
        file_format="parquet",
        columns=_columns(
            "company_ref visit_date chem_oxygen_demand ammonia_nitrogen wastewater_flow ph_value daily_output_kg "
            "monthly_energy_mwh headcount violations_last_3y days_since_last_inspection firm_sector insp_result"
        ),
        date_format="%d/%m/%Y",
        id_prefix="HBR",
        units={"cod": "g/L", "nh3n": "g/m^3", "production": "kg/day"},
        codes={"chemical": "CHEM", "paper": "PAP", "food": "FOOD", "metal": "MET", "textile": "TEX"},
        missing_marker=None,
        optional_missing={"employees": 0.04},
    ),
    # Changed its industry code list to the city's words on 1 July 2024.
    "north-district": Recording(
        file_format="csv",
        columns=_columns(
            "reg_no date CODcr NH3_N Q_wastewater PH prod_tpm elec_kwh staff hist_viol insp_gap_days sector outcome"
        ),
        date_format="%d.%m.%Y",
        id_prefix="N",
        units={"cod": "g/m^3", "nh3n": "g/m^3", "energy": "kWh/month"},
        old_codes={"chemical": "C1", "paper": "C2", "food": "C3", "metal": "C4", "textile": "C5"},
        code_change=dt.date(2024, 6, 30),
        missing_marker="NA",
        optional_missing={"nh3n": 0.05, "energy": 0.03},
    ),
    # German sector words, flow in L/s, compact dates; its COD probe reads 30% high by the end of 2024.
    "east-district": Recording(
        file_format="parquet",
        columns=_columns(
            "firm_code inspected_on cod_concentration ammonia discharge_volume acidity_ph output_t energy_use "
            "n_employees previous_violations days_since_visit industry_type non_compliant"
        ),
        date_format="%Y%m%d",
        id_prefix="E-",
        units={"flow": "L/s"},
        codes={"chemical": "Chemie", "paper": "Papier", "food": "Lebensmittel", "metal": "Metall", "textile": "Textil"},
        missing_marker=None,
        optional_missing={"nh3n": 0.06},
        drift={"cod": 0.30},
    ),
    # NACE divisions as codes, flow in L/s, NH3-N in ug/L, US dates, -999 for missing and pH 0 for "not sampled".
    "hills-district": Recording(
        file_format="csv",
        columns=_columns(
            "FirmID InspectionDate COD NH3N Flow pH_level Production Energy Employees PastViolations "
            "DaysSinceInspection Industry Violation"
        ),
        date_format="%m/%d/%Y",
        id_prefix="H",
        units={"flow": "L/s", "nh3n": "ug/L"},
        codes={"chemical": "C20", "paper": "C17", "food": "C10", "metal": "C24", "textile": "C13"},
        missing_marker="-999",
        column_missing={"ph": "0"},
        optional_missing={"nh3n": 0.05, "employees": 0.05},
    ),
    # An SQLite register with NOT NULL on required columns; "n/a" typed into optional ones; COD and
    # NH3-N in g/m^3; its COD probe reads 20% low by the end of 2024.
    "river-district": Recording(
        file_format="sqlite",
        columns=_columns(
            "permit_no inspected_at cod_mg_l nh3_n_mg_l effluent_flow_m3_per_day ph production_tonnes energy_mwh "
            "workforce violations_3yr days_since_check sector_code violation_flag"
        ),
        date_format="%Y-%m-%d %H:%M",
        id_prefix="RV",
        units={"cod": "g/m^3", "nh3n": "g/m^3"},
        codes={"chemical": "Chemical", "paper": "Paper", "food": "Food", "metal": "Metal", "textile": "Textile"},
        missing_marker="n/a",
        optional_missing={"energy": 0.05, "employees": 0.05},
        drift={"cod": -0.20},
        not_null=True,
    ),
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


@dataclass(frozen=True)
class ProblemCounts:
    """How many problem records a district's file gets, by kind."""

    negative_flow: int
    bad_ph: int
    missing_required: int
    duplicate: int

    @property
    def extra(self) -> int:
        """Problem records drawn as new records (duplicates copy existing ones)."""
        return self.negative_flow + self.bad_ph + self.missing_required


def problem_counts(n: int, recording: Recording) -> ProblemCounts:
    """Problems for ``n`` clean records: a few per thousand of each kind, at least one."""
    return ProblemCounts(
        negative_flow=math.ceil(NEGATIVE_FLOW_RATE * n),
        bad_ph=math.ceil(BAD_PH_RATE * n),
        missing_required=0 if recording.not_null else math.ceil(MISSING_REQUIRED_RATE * n),
        duplicate=math.ceil(DUPLICATE_RATE * n),
    )


def _labelled(rng: np.random.Generator, district: District, intercept: float, n: int) -> pd.DataFrame:
    frame, logit = _draw_records(rng, district, n)
    frame["violation"] = (rng.random(n) < 1.0 / (1.0 + np.exp(-(logit + intercept)))).astype(np.int64)
    return frame


def generate_district(district: District, *, seed: int, scale: float) -> pd.DataFrame:
    """One district's records in canonical names and units, in the order of its file.

    Columns: the schema's fields, then ``firm_name`` and ``problem``. ``problem`` is
    "" for a record a correct harmonisation keeps, else why it must be excluded:
    "negative_flow", "bad_ph", "missing_required" or "duplicate". Values are as
    recorded: drift included, optional values missing as NaN.
    """
    index = [d.party for d in DISTRICTS].index(district.party)
    recording = RECORDING[district.party]
    intercept = _calibrate_intercept(np.random.default_rng([seed, index, 0]), district)
    rng = np.random.default_rng([seed, index, 1])
    n = max(MIN_RECORDS, round(district.records * scale))

    frame = _labelled(rng, district, intercept, n)
    missing = MIN_POSITIVES - int(frame["violation"].sum())
    if missing > 0:
        extra = _labelled(rng, district, intercept, 50 * n)
        positives = extra[extra["violation"] == 1].head(missing)
        if len(positives) < missing:
            raise RuntimeError(f"{district.party}: could not draw {missing} extra violations")
        negatives = rng.choice(np.flatnonzero(frame["violation"].to_numpy() == 0), size=missing, replace=False)
        for column in frame.columns:
            frame.loc[frame.index[negatives], column] = positives[column].to_numpy()

    counts = problem_counts(n, recording)
    width = max(4, len(str(2 * n)))
    firm_numbers = rng.permutation(10**width)[: n + counts.extra]
    frame["firm_name"] = [f"Firm {k:0{width}d}" for k in firm_numbers[:n]]
    frame["problem"] = ""

    # Everything below is how the district records its data: a stream of its own.
    rec = np.random.default_rng([seed, index, 2])
    bad = _labelled(rec, district, intercept, counts.extra)
    bad["firm_name"] = [f"Firm {k:0{width}d}" for k in firm_numbers[n:]]
    bad["problem"] = (
        ["negative_flow"] * counts.negative_flow + ["bad_ph"] * counts.bad_ph + ["missing_required"] * counts.missing_required
    )
    flow_rows = bad["problem"] == "negative_flow"
    bad.loc[flow_rows, "flow"] = -bad.loc[flow_rows, "flow"]
    ph_rows = bad["problem"] == "bad_ph"
    slipped = bad.loc[ph_rows, "ph"] * 10.0  # a slipped decimal point: 7.25 -> 72.5
    bad.loc[ph_rows, "ph"] = np.round(np.where(slipped > 14.0, slipped, -bad.loc[ph_rows, "ph"]), 2)
    blank_rows = np.flatnonzero(bad["problem"] == "missing_required")
    frame = frame.astype({"employees": "float64", "past_violations": "float64", "days_since_inspection": "float64"})
    bad = bad.astype(frame.dtypes.to_dict())
    for row in blank_rows:
        column = "ph" if "ph" in recording.column_missing else BLANKABLE[rec.integers(len(BLANKABLE))]
        bad.loc[bad.index[row], column] = None

    # Interleave the problem records at random places, then number the firms in file order.
    key = np.concatenate([np.arange(n, dtype=float), rec.uniform(0.0, n, counts.extra)])
    records = pd.concat([frame, bad], ignore_index=True).iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
    records.insert(0, "firm_id", [f"{recording.id_prefix}{k + 1:05d}" for k in range(len(records))])

    days = (PERIOD_END - PERIOD_START).days
    offsets = rec.integers(0, days + 1, len(records))
    minutes = rec.integers(8 * 60, 17 * 60, len(records))  # inspections happen in office hours
    stamps = pd.Timestamp(PERIOD_START) + pd.to_timedelta(offsets, unit="D") + pd.to_timedelta(minutes, unit="min")
    records.insert(1, "inspection_date", stamps if "%H" in recording.date_format else stamps.normalize())

    for name, bias in recording.drift.items():  # the instrument's reading, not the true value
        elapsed = offsets / days
        records[name] = np.round(records[name] * (1.0 + bias * elapsed), 1)

    clean = np.flatnonzero(records["problem"] == "")
    for name, fraction in recording.optional_missing.items():
        records.loc[records.index[clean[rec.random(len(clean)) < fraction]], name] = None

    # Entered twice: a copy of a clean record right after the original.
    twice = set(rec.choice(clean, size=counts.duplicate, replace=False).tolist())
    order = [p for p in range(len(records)) for _ in range(2 if p in twice else 1)]
    records = records.iloc[order].reset_index(drop=True)
    records.loc[records.duplicated(subset=["firm_id", "inspection_date"], keep="first"), "problem"] = "duplicate"

    names = [f["name"] for f in _schema()["field"]]
    return records[[*names, "firm_name", "problem"]]


_UNITS = pint.UnitRegistry()


def to_local(records: pd.DataFrame, recording: Recording) -> pd.DataFrame:
    """The records as the district writes them: local names, units, codes and dates; None where missing.

    Columns follow the schema's field order, then ``firm_name``. Values are Python
    objects (str, float, int or None), ready for any of the three file formats.
    """
    fields = {f["name"]: f for f in _schema()["field"]}
    dates = pd.to_datetime(records["inspection_date"])
    local: dict[str, list[object]] = {}
    for name, spec in fields.items():
        values = records[name]
        missing = values.isna().to_numpy()
        if name in recording.units:
            factor = _UNITS.Quantity(1.0, spec["unit"]).to(recording.units[name]).magnitude
            values = np.round(values.astype(float) * factor, LOCAL_DECIMALS[recording.units[name]])
        if spec["type"] == "date":
            column: list[object] = [d.strftime(recording.date_format) for d in dates]
        elif spec["type"] == "category":
            old = (
                (dates.dt.date <= recording.code_change).to_numpy()
                if recording.code_change
                else np.zeros(len(values), dtype=bool)
            )
            column = [
                (recording.old_codes if was_old else recording.codes).get(code, code)
                for code, was_old in zip(values, old, strict=True)
            ]
        elif spec["type"] in ("int", "bool"):
            column = [int(v) if not m else None for v, m in zip(values, missing, strict=True)]
        elif spec["type"] == "float":
            column = [float(v) if not m else None for v, m in zip(values, missing, strict=True)]
        else:
            column = list(values)
        local[recording.columns[name]] = [None if m else v for v, m in zip(column, missing, strict=True)]
    local["firm_name"] = list(records["firm_name"])
    return pd.DataFrame(local, dtype=object)


def _marker(recording: Recording, field_name: str) -> str | None:
    return recording.column_missing.get(field_name, recording.missing_marker)


def _text(value: object) -> str:
    if isinstance(value, float):
        return np.format_float_positional(value, trim="-")
    return str(value)


def write_district(records: pd.DataFrame, recording: Recording, path: Path) -> None:
    """Write canonical ``records`` (from generate_district) in the district's own standard."""
    local = to_local(records, recording)
    by_local = {local_name: name for name, local_name in recording.columns.items()}
    if recording.file_format == "csv":
        text = pd.DataFrame(
            {
                column: [_text(v) if v is not None else _marker(recording, by_local.get(column, "")) for v in local[column]]
                for column in local.columns
            }
        )
        text.to_csv(path, index=False)
    elif recording.file_format == "parquet":
        fields = {f["name"]: f for f in _schema()["field"]}
        typed = local.copy()
        for column in typed.columns:
            kind = fields[by_local[column]]["type"] if column in by_local else "string"
            typed[column] = typed[column].astype({"float": "Float64", "int": "Int64", "bool": "Int64"}.get(kind, "string"))
        typed.to_parquet(path, index=False, engine="pyarrow")
    elif recording.file_format == "sqlite":
        _write_sqlite(local, recording, path)
    else:
        raise ValueError(f"unknown file format {recording.file_format!r}")


def _write_sqlite(local: pd.DataFrame, recording: Recording, path: Path) -> None:
    """One table; required columns are NOT NULL, optional ones take the district's text marker."""
    fields = {f["name"]: f for f in _schema()["field"]}
    by_local = {local_name: name for name, local_name in recording.columns.items()}
    sql_type = {"float": "REAL", "int": "INTEGER", "bool": "INTEGER"}
    definitions, rows_by_column = [], []
    for column in local.columns:
        spec = fields.get(by_local.get(column, ""), {"type": "string"})
        required = spec.get("required", True) and column in by_local
        definitions.append(f'"{column}" {sql_type.get(spec["type"], "TEXT")}' + (" NOT NULL" if required else ""))
        marker = None if required else _marker(recording, by_local.get(column, ""))
        rows_by_column.append([marker if v is None else v for v in local[column]])
    path.unlink(missing_ok=True)
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"CREATE TABLE {SQLITE_TABLE} ({', '.join(definitions)})")
        placeholders = ", ".join("?" * len(definitions))
        db.executemany(f"INSERT INTO {SQLITE_TABLE} VALUES ({placeholders})", list(zip(*rows_by_column, strict=True)))
        db.commit()


def file_name(party: str) -> str:
    return f"{party}.{RECORDING[party].file_format}"


def generate_city(out_dir: Path, *, seed: int = 7, scale: float = 1.0) -> dict[str, Path]:
    """Write every district's file under ``out_dir`` in its own standard and format; return party -> path."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for district in DISTRICTS:
        records = generate_district(district, seed=seed, scale=scale)
        path = out_dir / file_name(district.party)
        write_district(records, RECORDING[district.party], path)
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
