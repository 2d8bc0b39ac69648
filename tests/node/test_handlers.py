"""federation.node.handlers.NodeHandlers: every RPC's logic on a real node runtime, without a network."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.errors import ConfigError, InvalidRequest, PolicyDenied, ProtocolOrderError
from federation.models import MODEL_NAMES, build_model
from federation.models.training import get_arrays
from federation.node.handlers import NodeHandlers
from federation.node.release import rounded
from federation.node.runtime import NodeRuntime
from federation.task import ModelSpec, RunContext, TaskSpec

ROWS = 123
CODES = ("chemical", "paper", "food")

SCHEMA = """
name = "inspections"
target = "violation"

[[field]]
name = "cod"
type = "float"
unit = "mg/L"
required = false

[[field]]
name = "ph"
type = "float"

[[field]]
name = "industry"
type = "category"
codes = ["chemical", "paper", "food"]

[[field]]
name = "employees"
type = "int"

[[field]]
name = "violation"
type = "bool"
"""

MANIFEST = """
[node]
id = "north-district"
kind = "department"

[data]
path = "data.csv"
schema = "schema.toml"

[data.columns]
cod = "COD_mgL"
ph = "pH"
industry = "sector"
employees = "staff"
violation = "violation_found"

[split]
test_fraction = 0.3
seed = 5

[policy]
path = "policy.toml"

[tls]
dir = "pki"
"""


def policy_text(release: str, *, party: str = "north-district") -> str:
    return f"""
party = "{party}"
default = "deny"

[[rule]]
name = "city platform"
recipients = ["city-platform"]
purposes = ["enforcement"]
release = "{release}"
columns = {{ deny = ["employees"] }}
min_cohort = 2
models = ["logreg", "mlp"]
max_rounds = 5

[[rule]]
name = "secret rule for the police"
recipients = ["police"]
purposes = ["crime"]
release = "raw"
"""


def write_node(directory: Path, release: str) -> Path:
    rng = np.random.default_rng(0)
    cod = rng.normal(80, 20, ROWS).round(1)
    frame = pd.DataFrame(
        {
            "firm_name": [f"Firm {i:05d}" for i in range(ROWS)],
            "COD_mgL": np.where(np.arange(ROWS) % 10 == 3, np.nan, cod),
            "pH": rng.normal(7.5, 0.7, ROWS).round(2),
            "sector": rng.choice(CODES, ROWS),
            "staff": rng.integers(5, 500, ROWS),
            "violation_found": (cod + rng.normal(0, 10, ROWS) > 85).astype(int),
        }
    )
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_csv(directory / "data.csv", index=False)
    (directory / "schema.toml").write_text(SCHEMA, encoding="utf-8")
    (directory / "policy.toml").write_text(policy_text(release), encoding="utf-8")
    manifest = directory / "node.toml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    return manifest


def handlers_for(directory: Path, release: str) -> NodeHandlers:
    runtime = NodeRuntime.load(write_node(directory, release), state_dir=directory / "state")
    runtime.clock = lambda: dt.date(2026, 6, 1)
    return NodeHandlers(runtime)


@pytest.fixture(scope="module")
def update_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_node(tmp_path_factory.mktemp("update-node"), "update")


@pytest.fixture
def node(update_node: Path, tmp_path: Path) -> NodeHandlers:
    runtime = NodeRuntime.load(update_node, state_dir=tmp_path / "state")  # each test its own runs, log and ledger
    runtime.clock = lambda: dt.date(2026, 6, 1)
    return NodeHandlers(runtime)


CITY = "city-platform"
TASK = TaskSpec(ModelSpec("logreg"), ("cod", "ph", "industry"), "violation", rounds=3, batch_size=16, learning_rate=0.05)


def ctx(round_: int = 0, *, run_id: str = "run-1", purpose: str = "enforcement") -> RunContext:
    return RunContext(run_id, purpose, round_)


def initial(task: TaskSpec = TASK) -> list[tuple[str, np.ndarray]]:
    return get_arrays(build_model(task.model, 5, seed=task.seed))


def accepted(handlers: NodeHandlers, task: TaskSpec = TASK, *, release: str = "update") -> NodeHandlers:
    answer = handlers.propose(CITY, ctx(), task, cohort_size=3, release=release)  # type: ignore[arg-type]
    assert answer.accepted, answer.reasons
    return handlers


# -- loading ------------------------------------------------------------------


def test_the_runtime_harmonises_and_splits_the_local_file(node: NodeHandlers) -> None:
    rt = node.runtime
    assert rt.node_id == "north-district"
    assert len(rt.train) + len(rt.test) == ROWS
    assert len(rt.test) == round(ROWS * 0.3)
    assert list(rt.train.columns) == ["__row", "cod", "ph", "industry", "employees", "violation"]
    assert rt.quality.total == ROWS and rt.quality.kept == ROWS


def test_a_re_drawn_split_holds_out_other_rows_of_the_same_table_in_the_same_share(node: NodeHandlers) -> None:
    rt = node.runtime
    assert rt.split_for("harmonised", 0) == (rt.train, rt.test)
    rows = {draw: rt.split_for("harmonised", draw) for draw in (1, 2)}
    share = (rt.train["violation"].sum() + rt.test["violation"].sum()) / ROWS
    for train, test in rows.values():
        assert abs(len(test) - 0.3 * ROWS) <= 1 and len(train) + len(test) == ROWS
        assert abs(test["violation"].mean() - share) < 0.03  # stratified: the node's share of violations
        assert set(train["__row"]) | set(test["__row"]) == set(range(ROWS)) and not set(train["__row"]) & set(test["__row"])
    assert set(rows[1][1]["__row"]) != set(rows[2][1]["__row"]) != set(rt.test["__row"])
    assert rt.split_for("harmonised", 1)[1]["__row"].tolist() == rows[1][1]["__row"].tolist()  # the same draw again


def test_a_policy_for_another_party_is_refused_at_load(tmp_path: Path) -> None:
    manifest = write_node(tmp_path, "update")
    (tmp_path / "policy.toml").write_text(policy_text("update", party="south-district"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        NodeRuntime.load(manifest)
    assert "'south-district'" in caught.value.problems[0] and "'north-district'" in caught.value.problems[0]


# -- describe -----------------------------------------------------------------


def test_describe_rounds_the_record_count(node: NodeHandlers) -> None:
    description = node.describe(CITY, ctx())
    assert description.approx_records == 120
    assert description.node_id == "north-district"
    assert description.scenario == "inspections"
    assert [f.name for f in description.fields] == ["cod", "ph", "industry", "employees", "violation"]
    assert description.fields[2].codes == CODES
    assert description.models == MODEL_NAMES


def test_describe_by_an_unknown_caller_is_denied(node: NodeHandlers) -> None:
    with pytest.raises(PolicyDenied):
        node.describe("stranger", ctx())


@given(st.integers(0, 10**9))
def test_record_counts_leave_with_two_significant_digits(count: int) -> None:
    shown = rounded(count)
    if count == 0:
        assert shown == 0
    elif count < 10:
        assert shown == 10
    else:
        digits = str(shown).rstrip("0")
        assert len(digits) <= 2
        assert abs(shown - count) <= 0.05 * count


# -- propose ------------------------------------------------------------------


def test_propose_by_an_unknown_caller_raises_policy_denied(node: NodeHandlers) -> None:
    with pytest.raises(PolicyDenied) as caught:
        node.propose("stranger", ctx(), TASK, cohort_size=3, release="update")
    text = " ".join(caught.value.reasons)
    assert "'stranger'" in text
    assert "police" not in text and "city platform" not in text


def test_an_accepted_proposal_carries_the_rule_constraints(node: NodeHandlers) -> None:
    answer = node.propose(CITY, ctx(), TASK, cohort_size=3, release="update")
    assert answer.accepted
    assert answer.max_rounds == 5
    assert answer.min_cohort == 2
    assert answer.usable_columns == ("cod", "ph", "industry", "violation")
    assert "city platform" in answer.reasons[0]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"cohort_size": 1}, "cohort of at least 2"),
        ({"release": "raw"}, "releases at most 'update'"),
        ({"context": ctx(purpose="marketing")}, "does not cover purpose 'marketing'"),
        ({"task": TaskSpec(ModelSpec("logreg"), ("cod", "employees"), "violation")}, "denies column(s) ['employees']"),
        ({"task": TaskSpec(ModelSpec("logreg"), ("cod",), "violation", rounds=6)}, "at most 5 rounds"),
    ],
)
def test_a_refused_proposal_says_why_and_opens_no_run(node: NodeHandlers, change: dict[str, object], expected: str) -> None:
    call: dict[str, object] = {"context": ctx(), "task": TASK, "cohort_size": 3, "release": "update", **change}
    answer = node.propose(CITY, call["context"], call["task"], cohort_size=call["cohort_size"], release=call["release"])  # type: ignore[arg-type]
    assert not answer.accepted
    assert any(expected in r for r in answer.reasons)
    assert not any("police" in r for r in answer.reasons)
    with pytest.raises(ProtocolOrderError, match="Propose first"):
        node.fit(CITY, ctx(1), TASK, initial())


@pytest.mark.parametrize(
    "task",
    [
        TaskSpec(ModelSpec("logreg"), ("cod", "firm_name"), "violation"),
        TaskSpec(ModelSpec("logreg"), ("cod",), "ph"),
        TaskSpec(ModelSpec("xgboost"), ("cod",), "violation"),
    ],
)
def test_a_task_the_node_cannot_run_is_an_invalid_request(node: NodeHandlers, task: TaskSpec) -> None:
    with pytest.raises(InvalidRequest):
        node.propose(CITY, ctx(), task, cohort_size=3, release="update")


# -- stats --------------------------------------------------------------------


def test_stats_before_propose_is_a_protocol_order_error(node: NodeHandlers) -> None:
    with pytest.raises(ProtocolOrderError, match="Propose first"):
        node.stats(CITY, ctx(), TASK)


def test_stats_by_an_unknown_caller_is_denied(node: NodeHandlers) -> None:
    with pytest.raises(PolicyDenied):
        node.stats("stranger", ctx(), TASK)


def test_stats_sums_equal_numpy_on_the_training_split(node: NodeHandlers) -> None:
    stats = accepted(node).stats(CITY, ctx(), TASK)
    train = node.runtime.train
    assert stats.columns == ("cod", "ph", "industry=chemical", "industry=paper", "industry=food")
    cod = train["cod"].to_numpy(dtype=np.float64)
    ph = train["ph"].to_numpy(dtype=np.float64)
    onehot = [(train["industry"].astype(str) == code).to_numpy(dtype=np.float64) for code in CODES]
    assert stats.count == (int((~np.isnan(cod)).sum()), len(train), len(train), len(train), len(train))
    assert stats.count[0] < len(train)
    np.testing.assert_allclose(stats.sum, [np.nansum(cod), ph.sum(), *(c.sum() for c in onehot)], rtol=1e-9)
    np.testing.assert_allclose(stats.sum_squares, [np.nansum(cod**2), (ph**2).sum(), *(c.sum() for c in onehot)], rtol=1e-9)
    assert all(math.isfinite(v) for v in stats.sum)


# -- export -------------------------------------------------------------------


def test_export_is_refused_under_an_update_policy(node: NodeHandlers) -> None:
    with pytest.raises(PolicyDenied) as caught:
        accepted(node).export(CITY, ctx(), TASK)
    assert any("releases at most 'update'" in r for r in caught.value.reasons)


def test_export_under_raw_returns_only_the_task_columns(tmp_path: Path) -> None:
    raw = accepted(handlers_for(tmp_path, "raw"), release="raw")
    table = raw.export(CITY, ctx(), TASK)
    assert table.column_names == ["cod", "ph", "industry", "violation"]
    assert "firm_name" not in table.column_names and "employees" not in table.column_names
    assert table.num_rows == len(raw.runtime.train)
    exported = table.to_pandas()
    np.testing.assert_allclose(exported["cod"], raw.runtime.train["cod"])


def test_export_before_propose_is_a_protocol_order_error(tmp_path: Path) -> None:
    with pytest.raises(ProtocolOrderError):
        handlers_for(tmp_path, "raw").export(CITY, ctx(), TASK)


# -- fit ----------------------------------------------------------------------


def test_fit_returns_arrays_of_the_same_shapes(node: NodeHandlers) -> None:
    start = initial()
    outcome = accepted(node).fit(CITY, ctx(1), TASK, start)
    assert [(n, a.shape) for n, a in outcome.arrays] == [(n, a.shape) for n, a in start]
    assert outcome.num_examples == len(node.runtime.train)
    assert math.isfinite(outcome.train_loss)
    assert any((a != b).any() for (_, a), (_, b) in zip(start, outcome.arrays, strict=True))


def test_fit_of_the_same_round_twice_is_refused(node: NodeHandlers) -> None:
    accepted(node).fit(CITY, ctx(1), TASK, initial())
    with pytest.raises(ProtocolOrderError):
        node.fit(CITY, ctx(1), TASK, initial())
    node.fit(CITY, ctx(2), TASK, initial())


def test_fit_beyond_the_accepted_rounds_is_refused(node: NodeHandlers) -> None:
    with pytest.raises(ProtocolOrderError, match="exceeds"):
        accepted(node).fit(CITY, ctx(TASK.rounds + 1), TASK, initial())


def test_fit_before_propose_is_a_protocol_order_error(node: NodeHandlers) -> None:
    with pytest.raises(ProtocolOrderError):
        node.fit(CITY, ctx(1), TASK, initial())


def test_fit_with_another_task_is_refused(node: NodeHandlers) -> None:
    other = TaskSpec(ModelSpec("logreg"), ("cod", "ph"), "violation", rounds=3)
    with pytest.raises(ProtocolOrderError, match="differs"):
        accepted(node).fit(CITY, ctx(1), other, get_arrays(build_model(other.model, 2, seed=0)))


def test_fit_needs_an_update_release(tmp_path: Path) -> None:
    stats_only = accepted(handlers_for(tmp_path, "stats"), release="stats")
    with pytest.raises(PolicyDenied):
        stats_only.fit(CITY, ctx(1), TASK, initial())


def test_malformed_arrays_are_an_invalid_request_and_use_no_round(node: NodeHandlers) -> None:
    accepted(node)
    wrong_shape = [(n, np.zeros((a.shape[0], a.shape[-1] + 1) if a.ndim == 2 else a.shape, np.float32)) for n, a in initial()]
    with pytest.raises(InvalidRequest, match="shape"):
        node.fit(CITY, ctx(1), TASK, wrong_shape)
    with_nan = [(n, np.full_like(a, np.nan)) for n, a in initial()]
    with pytest.raises(InvalidRequest, match="NaN"):
        node.fit(CITY, ctx(1), TASK, with_nan)
    with pytest.raises(InvalidRequest, match="do not match"):
        node.fit(CITY, ctx(1), TASK, initial()[:1])
    assert node.fit(CITY, ctx(1), TASK, initial()).num_examples == len(node.runtime.train)


def test_proposing_again_resumes_the_run_but_does_not_allow_a_round_to_be_replayed(node: NodeHandlers) -> None:
    accepted(node).fit(CITY, ctx(1), TASK, initial())
    accepted(node)  # a resumed coordinator proposes its run again
    with pytest.raises(ProtocolOrderError, match="already ran"):
        node.fit(CITY, ctx(1), TASK, initial())
    restarted = NodeHandlers(node.runtime)  # the node process restarted on the same state directory
    with pytest.raises(ProtocolOrderError, match="already ran"):
        restarted.fit(CITY, ctx(1), TASK, initial())
    assert restarted.fit(CITY, ctx(2), TASK, initial()).num_examples == len(node.runtime.train)


# -- evaluate -----------------------------------------------------------------


def test_evaluate_counts_the_test_split(node: NodeHandlers) -> None:
    scores = accepted(node).evaluate(CITY, ctx(1), TASK, initial())
    sums = scores.test
    assert scores.validation is None  # the task holds no validation rows out
    test = node.runtime.test
    assert sums.count == len(test)
    assert sums.positives == int(test["violation"].sum())
    assert sum(sums.positive_histogram) == sums.positives
    assert sum(sums.negative_histogram) == len(test) - sums.positives


def test_evaluate_refuses_malformed_arrays(node: NodeHandlers) -> None:
    with pytest.raises(InvalidRequest):
        accepted(node).evaluate(CITY, ctx(1), TASK, [(n, np.zeros((7, 7), np.float32)) for n, _ in initial()])


def test_evaluate_before_propose_is_a_protocol_order_error(node: NodeHandlers) -> None:
    with pytest.raises(ProtocolOrderError):
        node.evaluate(CITY, ctx(1), TASK, initial())


# -- local training -----------------------------------------------------------


def test_train_local_reports_every_round_on_the_test_split(node: NodeHandlers) -> None:
    results = list(accepted(node).train_local(CITY, ctx(), TASK))
    assert [r for r, _, _ in results] == [1, 2, 3]
    assert all(scores.test.count == len(node.runtime.test) for _, scores, _ in results)
    assert all(n == len(node.runtime.train) for _, _, n in results)


HOLDING_OUT = replace(TASK, validation_fraction=0.25)


def test_a_task_that_holds_rows_out_trains_on_the_rest_and_scores_both(node: NodeHandlers) -> None:
    accepted(node, HOLDING_OUT)
    train_rows = len(node.runtime.train)
    fitted = node.fit(CITY, ctx(1), HOLDING_OUT, initial())
    scores = node.evaluate(CITY, ctx(1), HOLDING_OUT, initial())
    assert scores.validation is not None
    held = scores.validation.count
    assert 0.1 * train_rows < held < 0.4 * train_rows
    assert fitted.num_examples == train_rows - held  # the held-out rows never train
    assert scores.test.count == len(node.runtime.test)
    local = list(node.train_local(CITY, ctx(), HOLDING_OUT))
    assert all(n == train_rows - held and s.validation is not None and s.validation.count == held for _, s, n in local)


def test_the_held_out_rows_are_the_same_in_every_call_and_flagged_in_an_export(tmp_path: Path) -> None:
    from federation.task import VALIDATION_COLUMN

    node = handlers_for(tmp_path, "raw")
    assert node.propose(CITY, ctx(), HOLDING_OUT, cohort_size=3, release="raw").accepted
    first = node.export(CITY, ctx(), HOLDING_OUT).to_pandas()
    second = node.export(CITY, ctx(), HOLDING_OUT).to_pandas()
    assert first[VALIDATION_COLUMN].equals(second[VALIDATION_COLUMN])
    flagged = int(first[VALIDATION_COLUMN].sum())
    assert flagged == node.scores(HOLDING_OUT, node.model(HOLDING_OUT, None)).validation.count  # type: ignore[union-attr]


def test_a_regression_objective_on_a_binary_target_is_refused_with_the_fix(node: NodeHandlers) -> None:
    wrong = replace(TASK, objective="regression", model=ModelSpec("linear"))
    with pytest.raises(InvalidRequest, match="objective must be 'binary'"):
        node.propose(CITY, ctx(), wrong, cohort_size=3, release="update")
