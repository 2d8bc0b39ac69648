"""federation.policy.explain: what each topology gets under a policy, and what changes between two policies."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from federation.policy import Policy, Request, load_policy
from federation.policy.explain import TOPOLOGY_RELEASES, diff, explain
from federation.privacy.accounting import MechanismStep, epsilon_of

PRESETS = Path(__file__).resolve().parents[2] / "policies" / "presets"
TODAY = dt.date(2026, 6, 1)
SECURE, PLAIN, CENTRAL, LOCAL = TOPOLOGY_RELEASES  # the four topologies, in the module's order

EXPERIMENT = Request(
    caller="city-platform",
    purpose="pollution-enforcement",
    release="none",
    model="logreg",
    columns=("cod", "flow", "violation"),
    rounds=10,
    cohort_size=4,
)


def preset(name: str) -> Policy:
    return load_policy(PRESETS / f"{name}.toml", today=TODAY, target="violation", party="north-district")


def decisions(name: str) -> dict[str, Any]:
    return {item.topology: item.decision for item in explain(preset(name), EXPERIMENT, today=TODAY)}


def test_explain_covers_every_topology_once() -> None:
    assert list(decisions("default")) == list(TOPOLOGY_RELEASES)


def test_under_strict_only_masked_updates_and_metrics_are_allowed() -> None:
    result = decisions("strict")
    assert not result[CENTRAL].allowed
    assert "raw" in " ".join(result[CENTRAL].reasons)
    assert not result[PLAIN].allowed
    assert "'update'" in " ".join(result[PLAIN].reasons)
    assert result[SECURE].allowed
    assert result[LOCAL].allowed
    assert result[LOCAL].noise_multiplier is None


def test_under_strict_the_noise_covers_every_planned_round() -> None:
    secure = decisions("strict")[SECURE]
    sigma, delta, budget = secure.noise_multiplier, secure.delta, secure.epsilon_budget
    assert sigma is not None and delta is not None and budget is not None
    assert f"for {EXPERIMENT.rounds} round(s)" in secure.reasons[0]
    assert epsilon_of([MechanismStep(sigma, 1.0, 10)], delta=delta) <= budget
    assert epsilon_of([MechanismStep(sigma * 0.99, 1.0, 10)], delta=delta) > budget


def test_under_open_everything_is_allowed() -> None:
    result = decisions("open")
    assert all(d.allowed for d in result.values()), {t: d.reasons for t, d in result.items()}
    assert all(d.noise_multiplier is None for d in result.values())


def test_under_default_raw_rows_stay_and_updates_leave() -> None:
    result = decisions("default")
    assert not result[CENTRAL].allowed
    assert "raw" in " ".join(result[CENTRAL].reasons)
    assert result[PLAIN].allowed and result[SECURE].allowed and result[LOCAL].allowed


def test_explain_under_strict_refuses_a_cohort_too_small_for_every_topology() -> None:
    small = Request(**{**EXPERIMENT.__dict__, "cohort_size": 3})
    result = explain(preset("strict"), small, today=TODAY)
    assert not any(item.decision.allowed for item in result)
    by_topology = {item.topology: item.decision for item in result}
    for topology in (SECURE, LOCAL):  # the releases strict grants; the others fail on release first
        assert "cohort of at least 4" in " ".join(by_topology[topology].reasons)


# -- diff --------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "name": "a",
    "recipients": ["city"],
    "purposes": ["enforcement"],
    "release": "stats",
    "min_cohort": 3,
}
DP = {"epsilon": 8.0, "delta": 1e-5, "clip": 1.0}


def policy(*rules: dict[str, Any], party: str = "north") -> Policy:
    return Policy.model_validate({"party": party, "rule": list(rules)})


def rule(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


OTHER = rule(name="b", recipients=["university"], purposes=["research"], release="update")

DIFFS = [
    ("identical", [rule()], [rule()], ["no change"]),
    ("both-empty", [], [], ["no change"]),
    (
        "rule-added",
        [rule()],
        [rule(), OTHER],
        ["rule 'b' added: releases update to university for research"],
    ),
    (
        "rule-added-with-dp",
        [rule()],
        [rule(), {**OTHER, "release": "masked-update", "dp": DP}],
        ["rule 'b' added: releases masked-update to university for research under differential privacy (epsilon 8)"],
    ),
    ("rule-removed", [rule(), OTHER], [rule()], ["rule 'b' removed: no longer releases update to university"]),
    ("release-more", [rule()], [rule(release="raw")], ["rule 'a': release stats -> raw (more may leave)"]),
    (
        "release-less",
        [rule(release="update")],
        [rule(release="masked-update")],
        ["rule 'a': release update -> masked-update (less may leave)"],
    ),
    ("cohort-stricter", [rule()], [rule(min_cohort=5)], ["rule 'a': minimum cohort 3 -> 5 (stricter)"]),
    ("cohort-looser", [rule()], [rule(min_cohort=2)], ["rule 'a': minimum cohort 3 -> 2 (looser)"]),
    (
        "dp-added",
        [rule()],
        [rule(dp=DP)],
        ["rule 'a': differential privacy added: epsilon 8, delta 1e-05, clip 1"],
    ),
    ("dp-removed", [rule(dp=DP)], [rule()], ["rule 'a': differential privacy removed"]),
    (
        "dp-changed",
        [rule(dp=DP)],
        [rule(dp={**DP, "epsilon": 4.0, "clip": 0.5})],
        ["rule 'a': privacy budget epsilon 8 -> 4, delta 1e-05 -> 1e-05, clip 1 -> 0.5"],
    ),
    ("recipients-added", [rule()], [rule(recipients=["city", "police"])], ["rule 'a': recipients added: police"]),
    ("recipients-removed", [rule(recipients=["city", "police"])], [rule()], ["rule 'a': recipients removed: police"]),
    (
        "recipients-swapped",
        [rule()],
        [rule(recipients=["police"])],
        ["rule 'a': recipients added: police", "rule 'a': recipients removed: city"],
    ),
    ("purposes-added", [rule()], [rule(purposes=["enforcement", "research"])], ["rule 'a': purposes added: research"]),
    ("expiry-set", [rule()], [rule(expires="2027-12-31")], ["rule 'a': expires never -> 2027-12-31"]),
    ("expiry-moved", [rule(expires="2027-12-31")], [rule(expires="2026-12-31")], ["rule 'a': expires 2027-12-31 -> 2026-12-31"]),
    ("expiry-removed", [rule(expires="2027-12-31")], [rule()], ["rule 'a': expires 2027-12-31 -> never"]),
    ("models", [rule()], [rule(models=["logreg"])], ["rule 'a': models any -> ['logreg']"]),
    ("max-rounds", [rule(max_rounds=10)], [rule()], ["rule 'a': maximum rounds 10 -> unlimited"]),
    (
        "columns",
        [rule()],
        [rule(columns={"deny": ["firm_name"]})],
        ["rule 'a': columns {'allow': None, 'deny': ()} -> {'allow': None, 'deny': ('firm_name',)}"],
    ),
    ("rule-order", [rule(), OTHER], [OTHER, rule()], ["rule order changed (the first matching rule decides)"]),
    (
        "release-and-cohort",
        [rule()],
        [rule(release="update", min_cohort=4)],
        ["rule 'a': release stats -> update (more may leave)", "rule 'a': minimum cohort 3 -> 4 (stricter)"],
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), [pytest.param(*case[1:], id=case[0]) for case in DIFFS])
def test_diff_says_what_changed(old: list[dict[str, Any]], new: list[dict[str, Any]], expected: list[str]) -> None:
    assert diff(policy(*old), policy(*new)) == expected


def test_diff_names_a_party_change() -> None:
    assert diff(policy(rule()), policy(rule(), party="south")) == ["party north -> south"]


def test_a_renamed_rule_is_a_removal_and_an_addition() -> None:
    lines = diff(policy(rule()), policy(rule(name="a2")))
    assert lines == [
        "rule 'a' removed: no longer releases stats to city",
        "rule 'a2' added: releases stats to city for enforcement",
    ]


def test_diff_of_the_presets_says_which_way_each_release_moves() -> None:
    strict, default, open_ = preset("strict"), preset("default"), preset("open")
    assert diff(strict, strict) == ["no change"]
    loosening = " ".join(diff(default, open_))
    assert "removed" in loosening and "added" in loosening and "raw" in loosening


def test_removed_and_added_rules_are_listed_in_policy_order() -> None:
    names = [f"rule number {i}" for i in range(10)]
    many = policy(*(rule(name=n) for n in names))
    removed = diff(many, policy())
    assert removed == [f"rule {n!r} removed: no longer releases stats to city" for n in names]
    added = diff(policy(), many)
    assert added == [f"rule {n!r} added: releases stats to city for enforcement" for n in names]
