"""federation.policy.model.load_policy: every problem of a policy file is found at load time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from federation.errors import ConfigError
from federation.policy import RELEASE_LEVELS, load_policy

TODAY = dt.date(2026, 6, 1)

POLICY = """
party = "north"
default = "deny"

[[rule]]
name = "stats to the platform"
recipients = ["city-platform"]
purposes = ["pollution-enforcement"]
release = "stats"
min_cohort = 3
columns = { deny = ["firm_name"] }
models = ["logreg"]
max_rounds = 20
expires = 2027-12-31

[[rule]]
name = "updates to the university"
recipients = ["university"]
purposes = ["research"]
release = "update"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_policy(path, today=TODAY)
    assert caught.value.path == str(path)
    return caught.value.problems


def test_a_valid_policy_loads(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, POLICY), today=TODAY)
    assert policy.party == "north"
    assert [r.name for r in policy.rule] == ["stats to the platform", "updates to the university"]
    first = policy.rule[0]
    assert first.min_cohort == 3
    assert first.columns.deny == ("firm_name",)
    assert first.columns.allow is None
    assert first.expires == dt.date(2027, 12, 31)
    assert policy.rule[1].min_cohort == 1
    assert policy.recipients == frozenset({"city-platform", "university"})


def test_the_summary_shows_a_recipient_only_its_own_rules(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, POLICY), today=TODAY)
    summary = policy.summary("city-platform").splitlines()
    assert summary[0] == "north: default deny"
    assert len(summary) == 2
    assert summary[1].startswith("stats to the platform: stats to city-platform for pollution-enforcement")
    assert "university" not in policy.summary("city-platform")
    assert "updates to the university" in policy.summary("university")


def test_the_shipped_policies_load() -> None:
    root = Path(__file__).resolve().parents[2] / "policies"
    files = sorted(root.glob("*.toml"))
    assert files
    for path in files:
        assert load_policy(path, today=dt.date(2026, 1, 1)).party == path.stem


def test_an_unknown_field_is_refused(tmp_path: Path) -> None:
    text = POLICY.replace('release = "update"', 'release = "update"\nretention_days = 30')
    assert problems(tmp_path, text) == ["rule[1].retention_days: unknown field (found 30)"]


def test_default_other_than_deny_is_refused(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, POLICY.replace('default = "deny"', 'default = "allow"'))
    assert problem.startswith("default:")


@pytest.mark.parametrize("value", [0, -1])
def test_min_cohort_must_be_positive(tmp_path: Path, value: int) -> None:
    [problem] = problems(tmp_path, POLICY.replace("min_cohort = 3", f"min_cohort = {value}"))
    assert problem.startswith("rule[0].min_cohort:")


def test_max_rounds_must_be_positive(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, POLICY.replace("max_rounds = 20", "max_rounds = 0"))
    assert problem.startswith("rule[0].max_rounds:")


def test_an_unknown_release_level_is_refused(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, POLICY.replace('release = "update"', 'release = "everything"'))
    assert problem.startswith("rule[1].release:")
    assert all(level in problem for level in RELEASE_LEVELS)


def test_a_rule_needs_recipients_and_purposes(tmp_path: Path) -> None:
    text = POLICY.replace('recipients = ["university"]', "recipients = []").replace('purposes = ["research"]', "purposes = []")
    assert sorted(p.split(":")[0] for p in problems(tmp_path, text)) == ["rule[1].purposes", "rule[1].recipients"]


def test_an_expired_rule_is_an_error_at_load_time(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, POLICY.replace("expires = 2027-12-31", "expires = 2026-05-31"))
    assert problem == "rule[0] ('stats to the platform').expires: 2026-05-31 is in the past"


def test_a_rule_expiring_today_still_loads(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, POLICY.replace("expires = 2027-12-31", "expires = 2026-06-01")), today=TODAY)
    assert policy.rule[0].expires == TODAY


def test_expiry_is_checked_against_the_real_date_by_default(tmp_path: Path) -> None:
    yesterday = dt.date.today() - dt.timedelta(days=1)
    with pytest.raises(ConfigError, match="is in the past"):
        load_policy(write(tmp_path, POLICY.replace("expires = 2027-12-31", f"expires = {yesterday.isoformat()}")))


def test_a_column_both_allowed_and_denied_is_refused(tmp_path: Path) -> None:
    text = POLICY.replace('columns = { deny = ["firm_name"] }', 'columns = { allow = ["cod", "ph"], deny = ["ph", "firm_name"] }')
    [problem] = problems(tmp_path, text)
    assert problem.startswith("rule[0].columns")
    assert "['ph']" in problem


def test_duplicate_rule_names_are_refused(tmp_path: Path) -> None:
    text = POLICY.replace('name = "updates to the university"', 'name = "stats to the platform"')
    [problem] = problems(tmp_path, text)
    assert "repeated: ['stats to the platform']" in problem


def test_a_bad_dp_section_reports_each_field(tmp_path: Path) -> None:
    text = POLICY + "dp = { epsilon = 0, delta = 1.5, clip = -1 }\n"
    assert sorted(p.split(":")[0] for p in problems(tmp_path, text)) == [
        "rule[1].dp.clip",
        "rule[1].dp.delta",
        "rule[1].dp.epsilon",
    ]


def test_a_missing_policy_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_policy(tmp_path / "absent.toml", today=TODAY)
