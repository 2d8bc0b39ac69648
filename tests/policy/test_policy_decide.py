"""federation.policy.evaluate.decide: a pure decision with reasons, deny by default."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from federation.policy import RELEASE_LEVELS, Policy, Request, decide

TODAY = dt.date(2026, 6, 1)


def policy(*rules: dict[str, Any]) -> Policy:
    return Policy.model_validate({"party": "north", "rule": list(rules)})


def rule(name: str = "r", **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"name": name, "recipients": ["city"], "purposes": ["enforcement"], "release": "update"}
    values.update(fields)
    return values


def request(**fields: Any) -> Request:
    values: dict[str, Any] = {"caller": "city", "purpose": "enforcement", "release": "update"}
    values.update(fields)
    return Request(**values)


def test_a_matching_rule_allows_with_its_constraints() -> None:
    decision = decide(
        policy(rule("grant", min_cohort=3, max_rounds=40, models=["logreg"])),
        request(model="logreg", columns=("cod", "ph"), rounds=10, cohort_size=4),
        today=TODAY,
    )
    assert decision.allowed
    assert decision.rule == "grant"
    assert decision.min_cohort == 3
    assert decision.max_rounds == 40
    assert decision.usable_columns == ("cod", "ph")
    assert decision.reasons == ("allowed by rule 'grant' (update to city)",)


def test_an_unnamed_recipient_is_denied_without_seeing_other_rules() -> None:
    secret = policy(
        rule("raw for the police", recipients=["police"], release="raw"),
        rule("stats for the university", recipients=["university"], release="stats"),
    )
    decision = decide(secret, request(caller="journalist"), today=TODAY)
    assert not decision.allowed
    assert decision.rule is None
    text = " ".join(decision.reasons)
    assert "'journalist'" in text
    for private in ("police", "university", "raw", "stats for"):
        assert private not in text


def test_a_named_recipient_sees_only_its_own_rules_in_the_reasons() -> None:
    mixed = policy(
        rule("police rule", recipients=["police"], purposes=["crime"], release="raw"),
        rule("city rule", purposes=["planning"]),
    )
    decision = decide(mixed, request(), today=TODAY)
    assert not decision.allowed
    assert decision.reasons == ("rule 'city rule' does not cover purpose 'enforcement'", "default is deny")
    assert "police" not in " ".join(decision.reasons)


def test_a_wildcard_recipient_covers_any_caller() -> None:
    decision = decide(policy(rule(recipients=["*"], release="stats")), request(caller="anyone", release="stats"), today=TODAY)
    assert decision.allowed


def test_a_purpose_mismatch_is_denied() -> None:
    decision = decide(policy(rule()), request(purpose="marketing"), today=TODAY)
    assert not decision.allowed
    assert "does not cover purpose 'marketing'" in decision.reasons[0]


def test_a_wildcard_purpose_covers_any_purpose() -> None:
    assert decide(policy(rule(purposes=["*"])), request(purpose="marketing"), today=TODAY).allowed


@given(st.sampled_from(RELEASE_LEVELS), st.sampled_from(RELEASE_LEVELS))
def test_a_rule_allows_every_level_up_to_its_own(granted: str, asked: str) -> None:
    decision = decide(policy(rule(release=granted)), request(release=asked), today=TODAY)
    assert decision.allowed == (RELEASE_LEVELS.index(asked) <= RELEASE_LEVELS.index(granted))


def test_a_raw_rule_allows_an_update_and_a_stats_rule_refuses_one() -> None:
    assert decide(policy(rule(release="raw")), request(release="update"), today=TODAY).allowed
    refused = decide(policy(rule(release="stats")), request(release="update"), today=TODAY)
    assert not refused.allowed
    assert "releases at most 'stats', the request needs 'update'" in refused.reasons[0]


def test_a_denied_column_is_refused() -> None:
    decision = decide(
        policy(rule(columns={"deny": ["firm_name", "address"]})), request(columns=("cod", "firm_name")), today=TODAY
    )
    assert not decision.allowed
    assert "denies column(s) ['firm_name']" in decision.reasons[0]


def test_only_allowed_columns_pass_an_allow_list() -> None:
    allow_list = policy(rule(columns={"allow": ["cod", "ph", "violation"]}))
    assert decide(allow_list, request(columns=("cod", "violation")), today=TODAY).allowed
    decision = decide(allow_list, request(columns=("cod", "flow", "energy")), today=TODAY)
    assert not decision.allowed
    assert "does not allow column(s) ['energy', 'flow']" in decision.reasons[0]


def test_a_model_outside_the_rule_is_refused() -> None:
    decision = decide(policy(rule(models=["logreg"])), request(model="mlp"), today=TODAY)
    assert not decision.allowed
    assert "does not allow model 'mlp'" in decision.reasons[0]
    assert decide(policy(rule()), request(model="mlp"), today=TODAY).allowed


def test_more_rounds_than_the_rule_allows_are_refused() -> None:
    limited = policy(rule(max_rounds=10))
    assert decide(limited, request(rounds=10), today=TODAY).allowed
    decision = decide(limited, request(rounds=11), today=TODAY)
    assert not decision.allowed
    assert "at most 10 rounds, the request asks for 11" in decision.reasons[0]


def test_a_cohort_below_the_minimum_is_refused() -> None:
    cohort = policy(rule(min_cohort=3))
    assert decide(cohort, request(cohort_size=3), today=TODAY).allowed
    decision = decide(cohort, request(cohort_size=2), today=TODAY)
    assert not decision.allowed
    assert "cohort of at least 3, the request has 2" in decision.reasons[0]
    assert decide(cohort, request(cohort_size=None), today=TODAY).min_cohort == 3


def test_expiry_is_relative_to_today() -> None:
    expiring = policy(rule(expires=TODAY))
    assert decide(expiring, request(), today=TODAY).allowed
    decision = decide(expiring, request(), today=TODAY + dt.timedelta(days=1))
    assert not decision.allowed
    assert f"expired on {TODAY}" in decision.reasons[0]


def test_the_first_matching_rule_wins() -> None:
    two = policy(
        rule("narrow", release="stats", min_cohort=5),
        rule("broad", release="raw", min_cohort=2, max_rounds=7),
        rule("later", release="raw", min_cohort=9),
    )
    stats = decide(two, request(release="stats"), today=TODAY)
    assert (stats.rule, stats.min_cohort) == ("narrow", 5)
    update = decide(two, request(release="update"), today=TODAY)
    assert (update.rule, update.min_cohort, update.max_rounds) == ("broad", 2, 7)


def test_a_denial_lists_the_reason_of_every_rule_for_the_caller() -> None:
    decision = decide(
        policy(rule("a", release="stats"), rule("b", models=["logreg"])),
        request(model="mlp"),
        today=TODAY,
    )
    assert not decision.allowed
    assert len(decision.reasons) == 3
    assert decision.reasons[0].startswith("rule 'a'")
    assert decision.reasons[1].startswith("rule 'b'")
    assert decision.reasons[2] == "default is deny"


def test_an_empty_policy_denies_everyone() -> None:
    decision = decide(Policy(party="north"), request(), today=TODAY)
    assert not decision.allowed
