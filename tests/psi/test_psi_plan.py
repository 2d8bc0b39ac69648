"""federation.psi.plan: policies consent to each disclosure before any cryptography runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.errors import ConfigError
from federation.policy import PsiClause, load_policy
from federation.psi.plan import Disclosure, Granted, conflicts, size_refusal

PARTIES = ("ecology", "water", "power")
LABEL_LEARNS = Disclosure(membership=("ecology",), count=("water", "power"))


def grant(membership: tuple[str, ...] = ("ecology",), count: tuple[str, ...] = ("*",), minimum: int = 1) -> Granted:
    return Granted("mass balance", PsiClause(membership_to=membership, count_to=count, min_intersection=minimum))


def test_policies_that_consent_let_the_run_start() -> None:
    assert conflicts(PARTIES, {p: grant() for p in PARTIES}, LABEL_LEARNS) == []


def test_every_conflict_is_named_with_party_rule_and_clause() -> None:
    granted = {
        "ecology": grant(),
        "water": grant(membership=(), count=("ecology",)),  # the label party may learn the count only
        "power": Granted("metering", None),
    }
    problems = conflicts(PARTIES, granted, LABEL_LEARNS)
    assert problems == [
        "water: rule 'mass balance' does not let ecology learn which firms are shared (psi.membership_to)",
        "water: rule 'mass balance' does not let power learn how many firms are shared (psi.count_to)",
        "power: rule 'metering' has no psi clause, so it allows no private set intersection",
    ]


def test_a_party_missing_or_a_stranger_to_disclose_to_is_a_conflict() -> None:
    granted = {p: grant() for p in PARTIES[:2]}
    problems = conflicts(PARTIES, granted, Disclosure(membership=("ecology",), count=("police",)))
    assert "the run asks to disclose to ['police'], which are not parties of it" in problems
    assert "power: no answer granting a private set intersection" in problems


def test_membership_implies_the_count() -> None:
    clause = PsiClause(membership_to=("ecology",))
    assert clause.may_learn_count("ecology") and not clause.may_learn_count("water")
    assert PsiClause(count_to=("*",)).may_learn_count("anyone") and not PsiClause(count_to=("*",)).may_learn_membership("x")


def test_below_any_partys_minimum_nobody_learns_the_shared_firms() -> None:
    granted = {"ecology": grant(minimum=10), "water": grant(minimum=500), "power": grant()}
    assert size_refusal(500, granted) is None
    refusal = size_refusal(499, granted)
    assert refusal is not None and "water (rule 'mass balance')" in refusal and "ecology" not in refusal
    assert "499" not in refusal  # the count is itself a disclosure: the refusal does not repeat it


def test_a_psi_clause_is_validated_when_the_policy_loads(tmp_path: Path) -> None:
    path = tmp_path / "water.toml"
    path.write_text(
        """
party = "water"
[[rule]]
name = "mass balance"
recipients = ["city-platform"]
purposes = ["mass-balance"]
release = "stats"
psi = { membership_to = ["ecology"], min_intersection = 0, reveal = "all" }
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as error:
        load_policy(path)
    text = str(error.value)
    assert "min_intersection" in text and "reveal" in text


def test_the_coordinator_learns_the_count_only_where_every_clause_names_it_and_never_membership() -> None:
    wanted = Disclosure(membership=("ecology",), count=("coordinator",))
    named = {p: grant(count=("*", "coordinator")) for p in PARTIES}
    assert conflicts(PARTIES, named, wanted) == []
    starred = {**named, "power": grant(count=("*",))}  # '*' is every party of the run, not the coordinator
    assert conflicts(PARTIES, starred, wanted) == [
        "power: rule 'mass balance' does not name the coordinator in psi.count_to, so it may not learn the count"
    ]
    assert not PsiClause(membership_to=("*",)).may_learn_membership("coordinator")
    problems = conflicts(PARTIES, named, Disclosure(membership=("ecology", "coordinator"), count=()))
    assert problems[0] == "the run asks that the coordinator learn which firms are shared, which no policy can allow"


def test_a_policy_that_grants_the_coordinator_membership_is_refused_at_load() -> None:
    with pytest.raises(ValueError, match="never which firms are shared"):
        PsiClause(membership_to=("ecology", "coordinator"))
