"""The policy file: who may ask a node, for which purpose, and what may leave.

Deny by default. A rule grants a release level to some recipients for some
purposes; levels are ordered, so a rule that releases `raw` also allows
`update`, `masked-update` and `stats`. Every problem in a file is reported at
load time, never at the first request: unknown fields, wrong types, expired
rules, and impossible combinations (differential privacy on raw rows, a
column list that withholds the target, an empty model list).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from federation.config import StrictModel, read_toml, validate
from federation.errors import ConfigError

Release = Literal["none", "stats", "masked-update", "update", "raw"]
RELEASE_LEVELS: tuple[Release, ...] = ("none", "stats", "masked-update", "update", "raw")


def release_rank(level: Release) -> int:
    return RELEASE_LEVELS.index(level)


class Columns(StrictModel):
    """Canonical field names (after harmonisation) the rule allows or denies."""

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _disjoint(self) -> Columns:
        both = sorted(set(self.allow or ()) & set(self.deny))
        if both:
            raise ValueError(f"columns both allowed and denied: {both}")
        return self


class DPSettings(StrictModel):
    """Differential privacy a rule demands: the total budget for each recipient under this rule.

    One budget per recipient and rule, whatever purposes the recipient names
    (a purpose is the caller's word, so renaming it must not buy a fresh
    budget); `budget = "per-purpose"` gives each purpose its own budget, and
    says so in the file.
    """

    epsilon: float = Field(gt=0, allow_inf_nan=False, description="total budget per recipient under this rule")
    delta: float = Field(gt=0, lt=1)
    clip: float = Field(gt=0, allow_inf_nan=False, description="L2 bound of one node's update")
    level: Literal["client", "record"] = "client"
    budget: Literal["per-rule", "per-purpose"] = "per-rule"


class PsiClause(StrictModel):
    """What a private set intersection under this rule may let other parties learn of this node's firm keys.

    `require_parties`: parties every run must include, so that a coordinator
    cannot run the same keys against a subset of them to learn a pairwise or
    partial intersection. `membership_to`: parties that may learn which of their own firms are in
    the final intersection (for example the label party); `count_to`: parties
    that may learn only its size ("*" for every party of the run). Nobody
    else learns either, and no party ever learns a pairwise or partial
    intersection. Below `min_intersection` firms in common the node refuses,
    and nobody learns which firms were shared.
    """

    membership_to: tuple[str, ...] = ()
    count_to: tuple[str, ...] = ()
    min_intersection: int = Field(default=1, ge=1)
    require_parties: tuple[str, ...] = ()  # a run must include every one of these (no sub-runs for pairwise overlaps)

    @field_validator("membership_to")
    @classmethod
    def _never_the_coordinator(cls, parties: tuple[str, ...]) -> tuple[str, ...]:
        if "coordinator" in parties:
            raise ValueError("the coordinator may learn at most the count (psi.count_to), never which firms are shared")
        return parties

    def may_learn_membership(self, party: str) -> bool:
        """'*' means every party of the run; the coordinator is never one."""
        return party != "coordinator" and (party in self.membership_to or "*" in self.membership_to)

    def may_learn_count(self, party: str) -> bool:
        """A party that may learn membership learns the count with it; the coordinator only if named."""
        if party == "coordinator":
            return party in self.count_to
        return self.may_learn_membership(party) or party in self.count_to or "*" in self.count_to


class VerticalClause(StrictModel):
    """What a vertical run under this rule may do with this node's columns (the rule's `columns` say which).

    `label_party`: the one party whose labels train the model and who alone
    learns the joint scores of the shared firms. `require_parties`: parties
    every run with other parties must include (the label party may always
    train alone on its own columns, the local-only baseline). `roles`: which roles this node will take (a
    compute party and the helper handle shares of everyone's data, an input
    party only its own). `metrics_to`: who may be told the test metrics (on
    the label party's policy: for example "coordinator", for the report).
    """

    label_party: str
    require_parties: tuple[str, ...] = ()
    roles: tuple[Literal["label party", "compute party", "helper", "input party"], ...] = (
        "label party",
        "compute party",
        "helper",
        "input party",
    )
    metrics_to: tuple[str, ...] = ()


class Rule(StrictModel):
    name: str
    recipients: tuple[str, ...] = Field(min_length=1)
    purposes: tuple[str, ...] = Field(min_length=1)
    release: Release
    columns: Columns = Columns()
    min_cohort: int = Field(default=1, ge=1)
    dp: DPSettings | None = None
    models: tuple[str, ...] | None = None
    max_rounds: int | None = Field(default=None, ge=1)
    expires: dt.date | None = None
    psi: PsiClause | None = None  # absent: this rule allows no private set intersection
    vertical: VerticalClause | None = None  # absent: this rule allows no vertical training

    @field_validator("models")
    @classmethod
    def _some_model(cls, models: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if models is not None and not models:
            raise ValueError("models = [] allows no model at all; omit the field to allow every registered model")
        return models

    @field_validator("dp")
    @classmethod
    def _dp_not_on_raw(cls, dp: DPSettings | None, info: ValidationInfo) -> DPSettings | None:
        if dp is not None and info.data.get("release") == "raw":
            raise ValueError("differential privacy cannot protect raw rows: use a release below 'raw' or drop dp")
        return dp


class Policy(StrictModel):
    party: str
    default: Literal["deny"] = "deny"
    rule: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> Policy:
        names = [r.name for r in self.rule]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique, repeated: {duplicates}")
        return self

    @property
    def recipients(self) -> frozenset[str]:
        return frozenset(r for rule in self.rule for r in rule.recipients)

    def summary(self, recipient: str) -> str:
        """One line per rule that concerns `recipient`; other recipients' rules stay private."""
        lines = [f"{self.party}: default {self.default}"]
        for r in self.rule:
            if recipient not in r.recipients and "*" not in r.recipients:
                continue
            dp = f", dp epsilon {r.dp.epsilon} (clip {r.dp.clip})" if r.dp else ""
            to = "anyone" if "*" in r.recipients else recipient  # never the names of other recipients
            lines.append(f"{r.name}: {r.release} to {to} for {', '.join(r.purposes)}, min cohort {r.min_cohort}{dp}")
        return "\n".join(lines)


def budget_key(rule: Rule, purpose: str) -> str:
    """The ledger key a release under `rule` is charged to (per recipient)."""
    if rule.dp is not None and rule.dp.budget == "per-purpose":
        return f"rule:{rule.name}/purpose:{purpose}"
    return f"rule:{rule.name}"


def load_policy(path: Path, *, today: dt.date | None = None, target: str | None = None, party: str | None = None) -> Policy:
    """Load and validate a policy file; expired rules, and rules that hide the target, are errors.

    A preset (`party = "*"`) becomes the policy of `party` when one is given.
    """
    data = read_toml(path)
    day = today or dt.date.today()
    problems = _raw_rule_problems(data, day, target)  # checked even when the schema check fails, so all show at once
    try:
        policy = validate(Policy, data, source=str(path))
    except ConfigError as error:
        raise ConfigError(str(path), [*error.problems, *problems]) from None
    if problems:
        raise ConfigError(str(path), problems)
    if policy.party == "*" and party is not None:
        policy = policy.model_copy(update={"party": party})
    return policy


def _raw_rule_problems(data: dict[str, Any], today: dt.date, target: str | None) -> list[str]:
    """Expired rules and rules that withhold the target, read defensively from the raw file."""
    rules = data.get("rule")
    if not isinstance(rules, list):
        return []
    problems = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        name = rule.get("name", "?")
        expires = rule.get("expires")
        if isinstance(expires, dt.date) and expires < today:
            problems.append(f"rule[{i}] ({name!r}).expires: {expires} is in the past")
        release = rule.get("release")
        if target is None or release not in RELEASE_LEVELS or release_rank(release) < release_rank("stats"):
            continue
        raw_columns = rule.get("columns")
        columns: dict[str, Any] = raw_columns if isinstance(raw_columns, dict) else {}
        deny, allow = columns.get("deny", []), columns.get("allow")
        if isinstance(deny, list) and target in deny:
            problems.append(f"rule[{i}] ({name!r}).columns.deny: removes the target column {target!r}, so nothing can be learned")
        if isinstance(allow, list) and target not in allow:
            problems.append(f"rule[{i}] ({name!r}).columns.allow: does not include the target column {target!r}")
    return problems
