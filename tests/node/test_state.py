"""federation.node.state.RunRegistry: a node computes only for accepted runs, in order, never twice."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.errors import ProtocolOrderError
from federation.node.state import RunRegistry
from federation.task import FeatureScaling, ModelSpec, RunContext, TaskSpec

TASK = TaskSpec(ModelSpec("logreg"), ("cod", "ph"), "violation", rounds=3)


def ctx(round_: int = 0, *, run_id: str = "run-1", purpose: str = "enforcement") -> RunContext:
    return RunContext(run_id, purpose, round_)


@pytest.fixture
def registry() -> RunRegistry:
    runs = RunRegistry()
    runs.accept("city", ctx(), TASK)
    return runs


def test_a_call_before_propose_is_refused() -> None:
    with pytest.raises(ProtocolOrderError, match="call Propose first"):
        RunRegistry().require("city", ctx(), TASK)
    with pytest.raises(ProtocolOrderError, match="call Propose first"):
        RunRegistry().start_fit_round("city", ctx(1), TASK)


def test_an_accepted_run_is_found(registry: RunRegistry) -> None:
    run = registry.require("city", ctx(), TASK)
    assert (run.caller, run.purpose, run.task, run.last_fit_round) == ("city", "enforcement", TASK, 0)


def test_runs_belong_to_the_caller_that_proposed_them(registry: RunRegistry) -> None:
    with pytest.raises(ProtocolOrderError):
        registry.require("someone-else", ctx(), TASK)
    with pytest.raises(ProtocolOrderError):
        registry.require("city", ctx(run_id="run-2"), TASK)


def test_a_purpose_mismatch_is_refused(registry: RunRegistry) -> None:
    with pytest.raises(ProtocolOrderError, match="accepted for purpose 'enforcement', not 'marketing'"):
        registry.require("city", ctx(purpose="marketing"), TASK)


@pytest.mark.parametrize(
    "other",
    [
        TaskSpec(ModelSpec("mlp"), ("cod", "ph"), "violation", rounds=3),
        TaskSpec(ModelSpec("logreg"), ("cod",), "violation", rounds=3),
        TaskSpec(ModelSpec("logreg"), ("ph", "cod"), "violation", rounds=3),
        TaskSpec(ModelSpec("logreg"), ("cod", "ph", "flow"), "violation", rounds=3),
        TaskSpec(ModelSpec("logreg"), ("cod", "ph"), "flow", rounds=3),
    ],
)
def test_a_task_differing_from_the_accepted_one_is_refused(registry: RunRegistry, other: TaskSpec) -> None:
    with pytest.raises(ProtocolOrderError, match="differs from the one this node accepted"):
        registry.require("city", ctx(), other)
    with pytest.raises(ProtocolOrderError, match="differs"):
        registry.start_fit_round("city", ctx(1), other)


def test_a_scaling_other_than_the_accepted_one_is_refused(registry: RunRegistry) -> None:
    """A caller-chosen scaling per call would let Evaluate threshold single records at will."""
    scaled = TASK.with_scaling(FeatureScaling(("cod", "ph"), (1.0, 7.0), (2.0, 0.5)))
    with pytest.raises(ProtocolOrderError, match="differs"):
        registry.require("city", ctx(), scaled)
    with pytest.raises(ProtocolOrderError):
        registry.start_fit_round("city", ctx(1), scaled)
    assert registry.require("city", ctx(), TASK).last_fit_round == 0  # the refusal used up no round


def test_each_accepted_round_is_evaluated_at_most_once(registry: RunRegistry) -> None:
    registry.claim_evaluation("city", ctx(1), TASK)
    with pytest.raises(ProtocolOrderError, match="already evaluated"):
        registry.claim_evaluation("city", ctx(1), TASK)
    for outside in (0, TASK.rounds + 1):
        with pytest.raises(ProtocolOrderError, match="outside"):
            registry.claim_evaluation("city", ctx(outside), TASK)
    registry.claim_evaluation("city", ctx(TASK.rounds), TASK)


def test_a_task_with_other_hyperparameters_or_budget_is_refused(registry: RunRegistry) -> None:
    heavier = TaskSpec(ModelSpec("logreg"), ("cod", "ph"), "violation", rounds=3, local_epochs=1000)
    with pytest.raises(ProtocolOrderError):
        registry.start_fit_round("city", ctx(1), heavier)


def test_rounds_run_in_increasing_order(registry: RunRegistry) -> None:
    registry.start_fit_round("city", ctx(1), TASK)
    registry.start_fit_round("city", ctx(3), TASK)
    assert registry.require("city", ctx(), TASK).last_fit_round == 3


def test_a_replayed_round_is_refused(registry: RunRegistry) -> None:
    registry.start_fit_round("city", ctx(1), TASK)
    with pytest.raises(ProtocolOrderError, match="round 1 comes after round 1 already ran"):
        registry.start_fit_round("city", ctx(1), TASK)


def test_an_older_round_is_refused(registry: RunRegistry) -> None:
    registry.start_fit_round("city", ctx(2), TASK)
    with pytest.raises(ProtocolOrderError, match="round 1 comes after round 2"):
        registry.start_fit_round("city", ctx(1), TASK)
    assert registry.require("city", ctx(), TASK).last_fit_round == 2


def test_round_zero_is_not_a_training_round(registry: RunRegistry) -> None:
    with pytest.raises(ProtocolOrderError):
        registry.start_fit_round("city", ctx(0), TASK)


def test_a_round_beyond_the_accepted_rounds_is_refused(registry: RunRegistry) -> None:
    with pytest.raises(ProtocolOrderError, match="round 4 exceeds the 3 accepted rounds"):
        registry.start_fit_round("city", ctx(4), TASK)
    longer = TaskSpec(ModelSpec("logreg"), ("cod", "ph"), "violation", rounds=100)
    with pytest.raises(ProtocolOrderError, match="differs from the one this node accepted"):
        registry.start_fit_round("city", ctx(4), longer)
    assert registry.require("city", ctx(), TASK).last_fit_round == 0


@given(st.lists(st.integers(0, 5), max_size=12))
def test_each_round_runs_at_most_once_whatever_the_order(rounds: list[int]) -> None:
    runs = RunRegistry()
    runs.accept("city", ctx(), TASK)
    started = []
    for r in rounds:
        try:
            runs.start_fit_round("city", ctx(r), TASK)
            started.append(r)
        except ProtocolOrderError:
            pass
    assert started == sorted(set(started))
    assert all(1 <= r <= TASK.rounds for r in started)


def test_concurrent_calls_for_the_same_round_start_it_once(registry: RunRegistry) -> None:
    wins: list[int] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            registry.start_fit_round("city", ctx(1), TASK)
            wins.append(1)
        except ProtocolOrderError:
            pass

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins == [1]


def test_proposing_the_same_run_again_resumes_it_without_reopening_its_rounds(registry: RunRegistry) -> None:
    registry.start_fit_round("city", ctx(1), TASK)
    assert registry.accept("city", ctx(), TASK) is False
    with pytest.raises(ProtocolOrderError):
        registry.start_fit_round("city", ctx(1), TASK)
    registry.start_fit_round("city", ctx(2), TASK)


def test_the_same_run_id_with_another_task_or_purpose_is_refused(registry: RunRegistry) -> None:
    with pytest.raises(ProtocolOrderError, match="already proposed with another purpose or task"):
        registry.accept("city", ctx(), TaskSpec(ModelSpec("logreg"), ("cod",), "violation", rounds=3))
    with pytest.raises(ProtocolOrderError, match="already proposed with another purpose or task"):
        registry.accept("city", ctx(purpose="marketing"), TASK)


# -- kept on disk: a restarted node refuses replays and finds resumed runs ------------------------


def test_a_restarted_registry_remembers_rounds_evaluations_and_cohorts(tmp_path: Path) -> None:
    scaled = TASK.with_scaling(FeatureScaling(("cod", "ph"), (1.0, 7.0), (0.5, 1.5)))
    first = RunRegistry(tmp_path)
    first.accept("city", ctx(), scaled, noise_required=1.25)
    first.start_fit_round("city", ctx(1), scaled)
    first.claim_evaluation("city", ctx(1), scaled)
    first.evaluation_cohort("city", ctx(1), ("a", "b", "c"), fix=True)
    again = RunRegistry(tmp_path)
    run = again.require("city", ctx(), scaled)
    assert (run.last_fit_round, run.evaluated, run.evaluation_cohort, run.noise_required) == (1, {1}, ("a", "b", "c"), 1.25)
    with pytest.raises(ProtocolOrderError, match="already ran"):
        again.start_fit_round("city", ctx(1), scaled)
    with pytest.raises(ProtocolOrderError, match="already evaluated"):
        again.claim_evaluation("city", ctx(1), scaled)
    with pytest.raises(ProtocolOrderError, match="differs"):
        again.require("city", ctx(), TASK)  # the scaling is part of the remembered task


def test_runs_untouched_for_too_long_expire(tmp_path: Path) -> None:
    now = [1_000_000.0]
    runs = RunRegistry(tmp_path, expire_after=dt.timedelta(days=1), clock=lambda: now[0])
    runs.accept("city", ctx(run_id="old"), TASK)
    now[0] += 2 * 86400
    runs.accept("city", ctx(run_id="new"), TASK)
    with pytest.raises(ProtocolOrderError, match="call Propose first"):
        runs.require("city", ctx(run_id="old"), TASK)
    assert len(list((tmp_path / "runs").glob("*.json"))) == 1
    reloaded = RunRegistry(tmp_path, expire_after=dt.timedelta(days=1), clock=lambda: now[0] + 2 * 86400)
    with pytest.raises(ProtocolOrderError, match="call Propose first"):
        reloaded.require("city", ctx(run_id="new"), TASK)


def test_each_caller_has_a_bounded_number_of_runs(tmp_path: Path) -> None:
    runs = RunRegistry(tmp_path, max_runs=3)
    for i in range(3):
        runs.accept("flooder", ctx(run_id=f"r{i}"), TASK)
    with pytest.raises(ProtocolOrderError, match="already has 3 runs"):
        runs.accept("flooder", ctx(run_id="r3"), TASK)
    runs.accept("city", ctx(run_id="r3"), TASK)  # another caller is not affected


def test_an_unreadable_run_file_is_set_aside_not_fatal(tmp_path: Path) -> None:
    RunRegistry(tmp_path).accept("city", ctx(), TASK)
    path = next((tmp_path / "runs").glob("*.json"))
    path.write_text("{not json")
    runs = RunRegistry(tmp_path)
    with pytest.raises(ProtocolOrderError, match="call Propose first"):
        runs.require("city", ctx(), TASK)
    assert path.with_suffix(".unreadable").is_file()


def test_one_caller_gets_a_bounded_number_of_re_drawn_test_splits() -> None:
    from dataclasses import replace

    from federation.node.state import MAX_TEST_DRAWS_PER_CALLER

    runs = RunRegistry()
    for draw in range(1, MAX_TEST_DRAWS_PER_CALLER + 1):
        runs.accept("city", ctx(run_id=f"run-{draw}"), replace(TASK, test_draw=draw))
    runs.accept("city", ctx(run_id="again"), replace(TASK, test_draw=3))  # a draw it already has
    runs.accept("city", ctx(run_id="own"), TASK)  # the node's own split is not a draw
    runs.accept("police", ctx(run_id="other"), replace(TASK, test_draw=99))  # another caller has its own allowance
    with pytest.raises(ProtocolOrderError, match=f"already used {MAX_TEST_DRAWS_PER_CALLER} re-drawn test splits"):
        runs.accept("city", ctx(run_id="one-more"), replace(TASK, test_draw=MAX_TEST_DRAWS_PER_CALLER + 1))
