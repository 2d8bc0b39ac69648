"""federation.task: run contexts and tasks refuse malformed values with every problem named."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.errors import ErrorCode, InvalidRequest
from federation.task import FeatureScaling, ModelSpec, RunContext, TaskSpec

LOGREG = ModelSpec("logreg")


def task(**overrides: object) -> TaskSpec:
    values: dict[str, object] = {"model": LOGREG, "features": ("a", "b"), "target": "y"}
    values.update(overrides)
    return TaskSpec(**values)  # type: ignore[arg-type]


def test_a_valid_task_keeps_its_values() -> None:
    spec = task(rounds=3, proximal_mu=0.5)
    assert spec.features == ("a", "b")
    assert spec.rounds == 3
    assert spec.scaling is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"features": ()}, "at least one feature"),
        ({"features": ("a", "a")}, "must not repeat"),
        ({"features": ("a", "y")}, "cannot also be a feature"),
        ({"target": ""}, "needs a target"),
        ({"rounds": 0}, "rounds must be in 1..10000, got 0"),
        ({"rounds": 10_001}, "rounds must be in 1..10000"),
        ({"local_epochs": 0}, "local_epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": math.nan}, "learning_rate"),
        ({"learning_rate": 11.0}, "learning_rate"),
        ({"proximal_mu": -0.1}, "proximal_mu must be >= 0, got -0.1"),
        ({"proximal_mu": math.inf}, "proximal_mu"),
    ],
)
def test_each_invalid_value_is_refused(overrides: dict[str, object], expected: str) -> None:
    with pytest.raises(InvalidRequest, match="invalid task") as caught:
        task(**overrides)
    assert expected in caught.value.public
    assert caught.value.code is ErrorCode.INVALID_REQUEST


def test_all_problems_are_listed_together() -> None:
    with pytest.raises(InvalidRequest) as caught:
        task(features=(), rounds=0, proximal_mu=-1.0, batch_size=0)
    message = caught.value.public
    for expected in ("at least one feature", "rounds must be", "proximal_mu", "batch_size"):
        assert expected in message
    assert message.count(";") == 3


def test_with_scaling_keeps_everything_else() -> None:
    original = task(rounds=4, local_epochs=2, batch_size=8, learning_rate=0.1, proximal_mu=0.3, seed=9)
    scaling = FeatureScaling(("a", "b"), (0.0, 1.0), (1.0, 2.0))
    scaled = original.with_scaling(scaling)
    assert scaled.scaling == scaling
    assert scaled == TaskSpec(**{**original.__dict__, "scaling": scaling})
    assert original.scaling is None


def test_scaling_needs_one_mean_and_std_per_column() -> None:
    with pytest.raises(InvalidRequest, match="one mean and one std per column"):
        FeatureScaling(("a", "b"), (0.0,), (1.0, 1.0))
    with pytest.raises(InvalidRequest, match="one mean and one std per column"):
        FeatureScaling(("a",), (0.0,), (1.0, 1.0))


@pytest.mark.parametrize("bad_std", [0.0, -1.0, math.nan, math.inf])
def test_scaling_std_must_be_finite_and_positive(bad_std: float) -> None:
    with pytest.raises(InvalidRequest, match="std"):
        FeatureScaling(("a", "b"), (0.0, 0.0), (1.0, bad_std))


@pytest.mark.parametrize("bad_mean", [math.nan, math.inf, -math.inf])
def test_scaling_mean_must_be_finite(bad_mean: float) -> None:
    with pytest.raises(InvalidRequest, match="mean"):
        FeatureScaling(("a",), (bad_mean,), (1.0,))


@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=5).flatmap(
        lambda means: st.tuples(
            st.just(means),
            st.lists(st.floats(min_value=1e-9, max_value=1e9), min_size=len(means), max_size=len(means)),
        )
    )
)
def test_scaling_accepts_any_finite_means_and_positive_stds(values: tuple[list[float], list[float]]) -> None:
    means, stds = values
    columns = tuple(f"c{i}" for i in range(len(means)))
    scaling = FeatureScaling(columns, tuple(means), tuple(stds))
    assert len(scaling.columns) == len(scaling.mean) == len(scaling.std)


@pytest.mark.parametrize(("run_id", "purpose"), [("", "p"), ("r", "")])
def test_run_context_needs_a_run_id_and_a_purpose(run_id: str, purpose: str) -> None:
    with pytest.raises(InvalidRequest, match="run id and a purpose"):
        RunContext(run_id, purpose)


def test_run_context_round_cannot_be_negative() -> None:
    with pytest.raises(InvalidRequest, match="round must be >= 0"):
        RunContext("r", "p", -1)
    assert RunContext("r", "p", 0).round == 0


@pytest.mark.parametrize(
    "bad",
    ["x" * 201, "run\nforged audit line", "\x1b[31mred", "[/]", "tab\there"],
    ids=["long", "newline", "escape", "markup", "tab"],
)
def test_run_ids_and_purposes_that_would_reach_logs_or_terminals_unsafely_are_refused(bad: str) -> None:
    for run_id, purpose in ((bad, "p"), ("r", bad)):
        with pytest.raises(InvalidRequest, match="letters, digits"):
            RunContext(run_id, purpose)


def test_ordinary_run_ids_and_purposes_pass() -> None:
    assert RunContext("pollution-enforcement-20261201-224210-federated-fedavg", "official statistics / 2026", 3).round == 3


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [16.0, float("-inf")]])
def test_non_finite_model_parameters_are_an_invalid_request(value: object) -> None:
    with pytest.raises(InvalidRequest, match="must be finite"):
        ModelSpec("mlp", {"hidden": value})  # type: ignore[dict-item]


def test_a_regression_task_takes_its_target_scaling_from_the_last_stats_column() -> None:
    from federation.task import FeatureScaling

    task = TaskSpec(ModelSpec("linear"), ("flow", "output"), "cod", objective="regression")
    assert task.stats_fields == ("flow", "output", "cod")
    scaled = task.with_scaling(FeatureScaling(("flow", "output", "cod"), (1.0, 2.0, 120.0), (0.5, 4.0, 40.0)))
    assert scaled.scaling == FeatureScaling(("flow", "output"), (1.0, 2.0), (0.5, 4.0))
    assert scaled.target_scaling == (120.0, 40.0)
    binary = TaskSpec(ModelSpec("logreg"), ("flow",), "violation")
    assert (
        binary.stats_fields == ("flow",) and binary.with_scaling(FeatureScaling(("flow",), (0.0,), (1.0,))).target_scaling is None
    )
    with pytest.raises(InvalidRequest, match="target_scaling"):
        TaskSpec(ModelSpec("linear"), ("flow",), "cod", objective="regression", target_scaling=(1.0, 0.0))
