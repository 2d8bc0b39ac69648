"""federation.policy: decisions under differential privacy, load-time errors of a policy file, the presets.

A rule with `dp` attaches a noise multiplier to model releases (masked-update, update) and
refuses them once the recipient's budget for the purpose is spent; statistics and `none`
are not model releases and carry no noise. The noise is checked against Opacus' own
`get_noise_multiplier`, not against numbers computed by the code under test.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import pytest
from opacus.accountants.utils import get_noise_multiplier

from federation.errors import ConfigError
from federation.policy import Policy, Request, decide, load_policy
from federation.policy.model import budget_key
from federation.privacy.accounting import MechanismStep, epsilon_of
from federation.privacy.ledger import BudgetLedger

REPO = Path(__file__).resolve().parents[2]
PRESETS = REPO / "policies" / "presets"
LOAD_DAY = dt.date(2026, 6, 1)
EXPIRES = dt.date(2027, 12, 31)
BUDGET, DELTA, CLIP = 4.0, 1e-5, 1.0

POLICY = """
party = "north"
default = "deny"

[[rule]]
name = "private updates"
recipients = ["city-platform"]
purposes = ["enforcement"]
release = "update"
columns = { deny = ["firm_name"] }
min_cohort = 3
models = ["logreg"]
max_rounds = 10
expires = 2027-12-31
dp = { epsilon = 4.0, delta = 1e-5, clip = 1.0 }

[[rule]]
name = "research statistics"
recipients = ["university"]
purposes = ["research"]
release = "stats"
columns = { allow = ["cod", "flow", "violation"] }
dp = { epsilon = 1.0, delta = 1e-6, clip = 0.5 }

[[rule]]
name = "plain model updates"
recipients = ["university"]
purposes = ["modelling"]
release = "masked-update"
models = ["mlp"]
"""


def opacus_sigma(epsilon: float, delta: float, steps: int) -> float:
    with warnings.catch_warnings():  # "optimal order is the largest alpha": Opacus' own, harmless here
        warnings.simplefilter("ignore", UserWarning)
        return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=1.0, steps=steps))


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    path = tmp_path_factory.mktemp("policy") / "north.toml"
    path.write_text(POLICY, encoding="utf-8")
    return load_policy(path, today=LOAD_DAY, target="violation")


def city(**fields: Any) -> Request:
    """A request that the dp rule allows at every boundary (rounds = max, cohort = min)."""
    values: dict[str, Any] = {
        "caller": "city-platform",
        "purpose": "enforcement",
        "release": "masked-update",
        "model": "logreg",
        "columns": ("cod", "flow", "violation"),
        "rounds": 10,
        "cohort_size": 3,
        "dp_steps": 10,
    }
    values.update(fields)
    return Request(**values)


def university(**fields: Any) -> Request:
    values: dict[str, Any] = {"caller": "university", "purpose": "research", "release": "stats", "columns": ("cod", "violation")}
    values.update(fields)
    return Request(**values)


SPENT = (MechanismStep(0.5, 1.0, 10),)  # epsilon far above 4 at delta 1e-5

# id, request, today, history, allowed, rule, reason fragment, noise attached
CASES = [
    ("dp-masked-update-at-every-boundary", city(), EXPIRES, (), True, "private updates", "differential privacy", True),
    ("dp-plain-update", city(release="update", dp_steps=3), LOAD_DAY, (), True, "private updates", "noise multiplier", True),
    ("dp-rule-stats-is-not-a-model-release", city(release="stats"), LOAD_DAY, (), True, "private updates", "allowed", False),
    ("dp-rule-none-is-not-a-model-release", city(release="none"), LOAD_DAY, (), True, "private updates", "allowed", False),
    ("dp-rule-stats-with-a-spent-budget", city(release="stats"), LOAD_DAY, SPENT, True, "private updates", "allowed", False),
    ("column-allow-list-covers-request", university(), LOAD_DAY, (), True, "research statistics", "allowed", False),
    (
        "no-dp-rule-model-release",
        university(purpose="modelling", release="masked-update", model="mlp"),
        LOAD_DAY,
        (),
        True,
        "plain model updates",
        "allowed",
        False,
    ),
    ("recipient-not-named", city(caller="police"), LOAD_DAY, (), False, None, "not a recipient", False),
    ("purpose-not-covered", city(purpose="marketing"), LOAD_DAY, (), False, None, "does not cover purpose 'marketing'", False),
    ("expired-rule", city(), EXPIRES + dt.timedelta(days=1), (), False, None, "expired on 2027-12-31", False),
    ("release-above-the-rule", city(release="raw"), LOAD_DAY, (), False, None, "releases at most 'update'", False),
    ("model-outside-the-rule", city(model="mlp"), LOAD_DAY, (), False, None, "does not allow model 'mlp'", False),
    (
        "denied-column",
        city(columns=("firm_name", "violation")),
        LOAD_DAY,
        (),
        False,
        None,
        "denies column(s) ['firm_name']",
        False,
    ),
    (
        "column-outside-allow-list",
        university(columns=("energy", "violation")),
        LOAD_DAY,
        (),
        False,
        None,
        "does not allow column(s) ['energy']",
        False,
    ),
    ("too-many-rounds", city(rounds=11), LOAD_DAY, (), False, None, "at most 10 rounds", False),
    ("cohort-too-small", city(cohort_size=2), LOAD_DAY, (), False, None, "cohort of at least 3", False),
    (
        "no-dp-rule-other-model",
        university(purpose="modelling", release="masked-update", model="logreg"),
        LOAD_DAY,
        (),
        False,
        None,
        "does not allow model 'logreg'",
        False,
    ),
    ("dp-budget-spent", city(), LOAD_DAY, SPENT, False, "private updates", "privacy budget spent", False),
]


@pytest.mark.parametrize(
    ("request_", "today", "history", "allowed", "rule", "fragment", "noisy"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_a_decision_under_differential_privacy(
    policy: Policy,
    request_: Request,
    today: dt.date,
    history: tuple[MechanismStep, ...],
    allowed: bool,
    rule: str | None,
    fragment: str,
    noisy: bool,
) -> None:
    decision = decide(policy, request_, today=today, history=lambda _key: history)
    assert decision.allowed is allowed
    assert decision.rule == rule
    assert fragment in " ".join(decision.reasons)
    assert (decision.noise_multiplier is not None) is noisy
    if noisy:
        assert decision.clip == CLIP
        assert decision.epsilon_budget == BUDGET
        assert decision.delta == DELTA
        assert decision.epsilon_spent == 0.0
        assert decision.noise_multiplier == pytest.approx(opacus_sigma(BUDGET, DELTA, request_.dp_steps), rel=0.01)
        assert not decision.budget_exhausted
    elif not decision.budget_exhausted:
        assert decision.clip is None
        assert decision.epsilon_budget is None


def test_every_rule_field_is_both_allowed_and_refused_in_the_table() -> None:
    """The table above is only useful if each field decides at least one row each way."""
    fragments = {
        "recipients": ("not a recipient",),
        "purposes": ("does not cover purpose",),
        "expires": ("expired on",),
        "release": ("releases at most",),
        "models": ("does not allow model",),
        "columns": ("denies column", "does not allow column"),
        "max_rounds": ("rounds",),
        "min_cohort": ("cohort of at least",),
        "dp": ("privacy budget spent",),
    }
    refused = " ".join(case[6] for case in CASES if not case[4])
    for field, words in fragments.items():
        assert any(w in refused for w in words), field
    allowed_dp_rows = [case for case in CASES if case[4] and case[5] == "private updates" and case[7]]
    assert allowed_dp_rows, "a row where every field of the dp rule allows"


@pytest.mark.parametrize("steps", [1, 5, 20, 50], ids=lambda n: f"{n}-rounds")
@pytest.mark.parametrize(("epsilon", "delta"), [(1.0, 1e-5), (8.0, 1e-6)], ids=["eps1", "eps8"])
def test_the_noise_for_planned_rounds_matches_opacus(epsilon: float, delta: float, steps: int) -> None:
    policy = Policy.model_validate(
        {
            "party": "north",
            "rule": [
                {
                    "name": "dp",
                    "recipients": ["city-platform"],
                    "purposes": ["*"],
                    "release": "masked-update",
                    "dp": {"epsilon": epsilon, "delta": delta, "clip": 2.0},
                }
            ],
        }
    )
    decision = decide(policy, city(model=None, dp_steps=steps), today=LOAD_DAY)
    assert decision.allowed
    assert decision.noise_multiplier == pytest.approx(opacus_sigma(epsilon, delta, steps), rel=0.01)
    assert decision.clip == 2.0
    assert f"for {steps} round(s)" in decision.reasons[0]


def test_the_required_noise_grows_with_the_ledger_history(policy: Policy, tmp_path: Path) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.sqlite")
    sigmas, spent = [], []
    for _ in range(3):
        decision = decide(policy, city(dp_steps=5), today=LOAD_DAY, history=lambda key: ledger.history("city-platform", key))
        assert decision.allowed
        assert decision.noise_multiplier is not None
        assert decision.budget_key.startswith("rule:")
        assert decision.epsilon_spent == pytest.approx(ledger.spent("city-platform", decision.budget_key, delta=DELTA))
        sigmas.append(decision.noise_multiplier)
        spent.append(decision.epsilon_spent)
        # one round of the run is released at twice the least noise, leaving budget for later
        ledger.charge(
            "city-platform",
            decision.budget_key,
            MechanismStep(2 * decision.noise_multiplier, 1.0, 1),
            purpose="enforcement",
            run_id="run",
            round_=1,
            epsilon=BUDGET,
            delta=DELTA,
        )
    assert sigmas[0] < sigmas[1] < sigmas[2]
    assert spent[0] == 0.0 < spent[1] < spent[2] < BUDGET
    # with the history, the planned rounds still fit exactly inside the budget
    final = ledger.history("city-platform", decision.budget_key)
    sigma = decide(policy, city(dp_steps=5), today=LOAD_DAY, history=lambda _key: final).noise_multiplier
    assert sigma is not None
    assert epsilon_of([*final, MechanismStep(sigma, 1.0, 5)], delta=DELTA) <= BUDGET


@pytest.mark.parametrize("release", ["masked-update", "update"])
def test_a_spent_budget_refuses_a_model_release_and_names_the_budget(policy: Policy, release: str) -> None:
    assert epsilon_of(SPENT, delta=DELTA) > BUDGET
    decision = decide(policy, city(release=release), today=LOAD_DAY, history=lambda _key: SPENT)
    assert not decision.allowed
    assert decision.budget_exhausted
    assert decision.noise_multiplier is None
    assert decision.epsilon_budget == BUDGET
    assert decision.epsilon_spent == pytest.approx(epsilon_of(SPENT, delta=DELTA))
    (reason,) = decision.reasons
    assert "budget" in reason
    assert "of 4 " in reason
    assert "'city-platform'" in reason and f"under rule {decision.rule!r}" in reason


def test_a_history_just_under_the_budget_still_allows_with_large_noise(policy: Policy) -> None:
    history = [MechanismStep(2.0, 1.0, 1)] * 2  # epsilon about 3.19 of 4
    decision = decide(policy, city(dp_steps=10), today=LOAD_DAY, history=lambda _key: history)
    assert decision.allowed
    assert decision.noise_multiplier is not None
    assert decision.noise_multiplier > opacus_sigma(BUDGET, DELTA, 10)
    assert epsilon_of([*history, MechanismStep(decision.noise_multiplier, 1.0, 10)], delta=DELTA) <= BUDGET


# -- load-time errors ----------------------------------------------------------------

RULE = """
party = "north"
[[rule]]
name = "r"
recipients = ["city-platform"]
purposes = ["enforcement"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_problems(tmp_path: Path, text: str) -> tuple[Path, ConfigError]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_policy(path, today=LOAD_DAY, target="violation")
    return path, caught.value


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        pytest.param('release = "raw"\ndp = { epsilon = 1.0, delta = 1e-5, clip = 1.0 }', "rule[0]", "raw", id="dp-on-raw"),
        pytest.param(
            'release = "update"\ndp = { epsilon = -1.0, delta = 1e-5, clip = 1.0 }',
            "rule[0].dp.epsilon",
            "greater than 0",
            id="negative-epsilon",
        ),
        pytest.param(
            'release = "update"\ndp = { epsilon = 0.0, delta = 1e-5, clip = 1.0 }',
            "rule[0].dp.epsilon",
            "greater than 0",
            id="zero-epsilon",
        ),
        pytest.param(
            'release = "update"\ndp = { epsilon = inf, delta = 1e-5, clip = 1.0 }',
            "rule[0].dp.epsilon",
            "finite",
            id="inf-epsilon",
        ),
        pytest.param(
            'release = "update"\ndp = { epsilon = 1.0, delta = 0.0, clip = 1.0 }',
            "rule[0].dp.delta",
            "greater than 0",
            id="zero-delta",
        ),
        pytest.param(
            'release = "update"\ndp = { epsilon = 1.0, delta = 1.0, clip = 1.0 }',
            "rule[0].dp.delta",
            "less than 1",
            id="delta-one",
        ),
        pytest.param(
            'release = "update"\ndp = { epsilon = 1.0, delta = 2.5, clip = 1.0 }',
            "rule[0].dp.delta",
            "less than 1",
            id="delta-above-one",
        ),
        pytest.param(
            'release = "update"\ndp = { epsilon = 1.0, delta = nan, clip = 1.0 }', "rule[0].dp.delta", "", id="delta-nan"
        ),
        pytest.param(
            'release = "update"\ndp = { epsilon = 1.0, delta = 1e-5, clip = 0.0 }',
            "rule[0].dp.clip",
            "greater than 0",
            id="zero-clip",
        ),
        pytest.param('release = "update"\nmodels = []', "rule[0]", "models = []", id="empty-models"),
        pytest.param(
            'release = "update"\ncolumns = { deny = ["violation"] }',
            "rule[0] ('r').columns.deny",
            "'violation'",
            id="deny-target",
        ),
        pytest.param(
            'release = "stats"\ncolumns = { allow = ["cod", "flow"] }',
            "rule[0] ('r').columns.allow",
            "'violation'",
            id="allow-without-target",
        ),
        pytest.param('release = "update"\nexpires = 2026-05-31', "rule[0] ('r').expires", "in the past", id="expired"),
    ],
)
def test_an_impossible_rule_is_a_config_error_naming_file_and_field(tmp_path: Path, body: str, field: str, fragment: str) -> None:
    path, error = load_problems(tmp_path, RULE + body + "\n")
    assert error.path == str(path)
    assert str(path) in str(error)
    matching = [p for p in error.problems if p.startswith(field)]
    assert matching, error.problems
    assert fragment in matching[0]


def test_a_target_hidden_by_a_rule_below_stats_is_no_problem(tmp_path: Path) -> None:
    policy = load_policy(
        write(tmp_path, RULE + 'release = "none"\ncolumns = { deny = ["violation"] }\n'), today=LOAD_DAY, target="violation"
    )
    assert policy.rule[0].release == "none"


def test_every_schema_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        RULE
        + 'release = "raw"\ndp = { epsilon = 1.0, delta = 1e-5, clip = 1.0 }\n'
        + RULE.split("\n", 2)[2].replace('"r"', '"s"')
        + 'release = "update"\ndp = { epsilon = -2.0, delta = 1.5, clip = 1.0 }\n'
        + RULE.split("\n", 2)[2].replace('"r"', '"t"')
        + 'release = "update"\nmodels = []\n'
    )
    path, error = load_problems(tmp_path, text)
    assert error.path == str(path)
    heads = sorted(p.split(":")[0] for p in error.problems)
    assert heads == ["rule[0].dp", "rule[1].dp.delta", "rule[1].dp.epsilon", "rule[2].models"]
    assert f"{len(error.problems)} problem(s)" in str(error)


def test_every_date_and_target_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        RULE
        + 'release = "update"\nexpires = 2025-01-01\ncolumns = { deny = ["violation"] }\n'
        + RULE.split("\n", 2)[2].replace('"r"', '"s"')
        + 'release = "stats"\ncolumns = { allow = ["cod"] }\n'
    )
    _, error = load_problems(tmp_path, text)
    assert len(error.problems) == 3
    assert any(".expires" in p and "rule[0]" in p for p in error.problems)
    assert any(".columns.deny" in p and "rule[0]" in p for p in error.problems)
    assert any(".columns.allow" in p and "rule[1]" in p for p in error.problems)


def test_an_expired_rule_is_reported_together_with_a_schema_error(tmp_path: Path) -> None:
    text = (
        RULE
        + 'release = "update"\nexpires = 2025-01-01\n'
        + RULE.split("\n", 2)[2].replace('"r"', '"s"')
        + 'release = "update"\ndp = { epsilon = -1.0, delta = 1e-5, clip = 1.0 }\n'
    )
    _, error = load_problems(tmp_path, text)
    assert any(p.startswith("rule[1].dp.epsilon") for p in error.problems)
    assert any("rule[0]" in p and ".expires" in p for p in error.problems)


def test_two_impossible_combinations_in_one_rule_are_both_reported(tmp_path: Path) -> None:
    _, error = load_problems(tmp_path, RULE + 'release = "raw"\nmodels = []\ndp = { epsilon = 1.0, delta = 1e-5, clip = 1.0 }\n')
    text = "\n".join(error.problems)
    assert "raw" in text
    assert "models = []" in text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param('release = "raw"\ndp = { epsilon = 1.0, delta = 1e-5, clip = 1.0 }', "rule[0].dp", id="dp-on-raw"),
        pytest.param('release = "update"\nmodels = []', "rule[0].models", id="empty-models"),
    ],
)
def test_an_impossible_combination_names_its_field_path(tmp_path: Path, body: str, field: str) -> None:
    _, error = load_problems(tmp_path, RULE + body + "\n")
    assert any(p.startswith(field + ":") for p in error.problems), error.problems


# -- presets -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["strict", "default", "open"])
def test_a_preset_loads_and_takes_the_given_party(name: str) -> None:
    path = PRESETS / f"{name}.toml"
    assert load_policy(path, today=LOAD_DAY, target="violation").party == "*"
    policy = load_policy(path, today=LOAD_DAY, target="violation", party="north-district")
    assert policy.party == "north-district"
    assert policy.rule


def test_the_presets_are_ordered_by_what_may_leave() -> None:
    strict, default, open_ = (
        load_policy(PRESETS / f"{n}.toml", today=LOAD_DAY, party="north") for n in ("strict", "default", "open")
    )
    assert all(r.dp is not None and r.release == "masked-update" for r in strict.rule)
    assert any(r.release == "raw" for r in open_.rule)
    assert all(r.release != "raw" for r in default.rule)


def test_a_preset_keeps_its_party_when_it_names_one(tmp_path: Path) -> None:
    path = write(tmp_path, RULE + 'release = "stats"\n')
    assert load_policy(path, today=LOAD_DAY, party="south").party == "north"


def test_one_budget_per_recipient_and_rule_whatever_the_purpose(policy: Policy) -> None:
    rule = policy.rule[0]
    assert budget_key(rule, "enforcement") == budget_key(rule, "a-purpose-renamed-for-a-fresh-budget")
    separate = rule.model_copy(update={"dp": rule.dp.model_copy(update={"budget": "per-purpose"})}) if rule.dp else rule
    assert budget_key(separate, "enforcement") != budget_key(separate, "other")


def test_the_decision_reads_the_history_of_its_rules_budget_key(policy: Policy) -> None:
    asked: list[str] = []

    def history(key: str) -> tuple[MechanismStep, ...]:
        asked.append(key)
        return SPENT

    decision = decide(policy, city(), today=LOAD_DAY, history=history)
    assert decision.budget_exhausted and asked == [decision.budget_key]
