"""federation.personalise.personalise: one node, the global model and its own rows, end to end."""

from __future__ import annotations

import numpy as np
import pytest

import federation.personalise as personalisation
from federation.errors import InvalidRequest
from federation.models import build_model
from federation.models.training import NamedArrays, flatten, get_arrays
from federation.personalise import binary_objective, personalise
from federation.task import ModelSpec

LOGREG = ModelSpec("logreg")
OBJECTIVE = binary_objective(batch_size=32, learning_rate=0.05)
# every method but fedper (logreg has no head of its own), with short budgets to keep the tests fast
NOT_FEDPER = {"local": {"epochs": 12}, "global": {}, "finetune": {"epochs": 3}, "interpolate": {}, "ditto": {"epochs": 4}}


def rows(n: int, w: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logistic data: P(y = 1 | x) = sigmoid(x @ w)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(w))).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ w)))).astype(np.float32)
    return x, y


def exact(w: np.ndarray) -> NamedArrays:
    """A perfectly trained global logistic model: the true weights of its distribution."""
    return [("weight", w.reshape(1, -1).astype(np.float32)), ("bias", np.zeros(1, dtype=np.float32))]


SPARSE = np.r_[[1.5, -1.0, 0.8, 0.6, -0.7], np.zeros(15)]  # 20 inputs: 50 rows are too few to learn it alone
DENSE = np.array([1.5, -1.0, 0.8, 0.0, 0.5, -0.7])


def test_all_public_names_are_exported() -> None:
    assert all(hasattr(personalisation, name) for name in personalisation.__all__)


def test_local_is_kept_when_the_global_model_serves_another_distribution() -> None:
    x, y = rows(150, -DENSE, seed=1)  # this node's relation is the reverse of everybody else's
    model, choice = personalise(exact(DENSE), LOGREG, x, y, methods=NOT_FEDPER, objective=OBJECTIVE, init_seed=0, seed=0)
    assert choice.method == "local" and choice.params == {"epochs": 12}
    assert choice.reason.startswith("kept local-only: no candidate beat it")
    margins = {c.label: c.margin for c in choice.summary.candidates}
    assert margins["global"] < -0.5 and max(margins.values()) <= max(c.needed for c in choice.summary.candidates)
    assert choice.summary.rows == 150 and "cross-fitting" in choice.summary.scheme
    alone = build_model(LOGREG, 6, seed=0)
    OBJECTIVE.fit(alone, x, y, epochs=12, seed=0, pull=0.0)
    np.testing.assert_array_equal(flatten(get_arrays(model)), flatten(get_arrays(alone)))  # refit on all rows = local-only


def test_the_global_model_is_chosen_when_local_rows_are_too_few() -> None:
    chosen = []
    for seed in range(5):
        x, y = rows(50, SPARSE, seed=10 + seed)  # same distribution as the well-trained global model
        model, choice = personalise(
            exact(SPARSE),
            LOGREG,
            x,
            y,
            methods={"local": {"epochs": 12}, "global": {}},
            objective=OBJECTIVE,
            init_seed=0,
            seed=seed,
        )
        chosen.append(choice.method)
        if choice.method == "global":
            assert "the global model is the default because fewer than 200 rows of the rarer class" in choice.reason
            assert choice.summary.few_local and choice.summary.default == "global"
            np.testing.assert_array_equal(flatten(get_arrays(model)), flatten(exact(SPARSE)))
    assert chosen.count("global") >= 4, chosen


def test_with_every_method_a_node_with_few_rows_leaves_local_only() -> None:
    x, y = rows(50, SPARSE, seed=20)
    _, choice = personalise(exact(SPARSE), LOGREG, x, y, methods=NOT_FEDPER, objective=OBJECTIVE, init_seed=0, seed=0)
    assert choice.method != "local", choice.reason
    assert len(choice.summary.candidates) == 8 and choice.summary.multiplier > 1.0


def test_a_validation_split_too_small_keeps_the_default_and_says_so() -> None:
    x, y = rows(16, DENSE, seed=3)
    without_global = {k: v for k, v in NOT_FEDPER.items() if k != "global"}
    model, choice = personalise(exact(DENSE), LOGREG, x, y, methods=without_global, objective=OBJECTIVE, init_seed=0, seed=0)
    assert choice.method == "local" and choice.summary.candidates == ()
    assert choice.reason.startswith("kept local-only without comparing: 16 validation rows are too few to choose on")
    assert "too few for a trustworthy local model" in choice.reason
    alone = build_model(LOGREG, 6, seed=0)
    OBJECTIVE.fit(alone, x, y, epochs=12, seed=0, pull=0.0)
    np.testing.assert_array_equal(flatten(get_arrays(model)), flatten(get_arrays(alone)))
    # offered the global model, a node this small keeps that instead: its local model rests on a handful of events
    model, choice = personalise(exact(DENSE), LOGREG, x, y, methods=NOT_FEDPER, objective=OBJECTIVE, init_seed=0, seed=0)
    assert choice.method == "global" and choice.summary.candidates == ()
    assert choice.reason.startswith("kept the global model without comparing: the global model is the default because")
    np.testing.assert_array_equal(flatten(get_arrays(model)), flatten(exact(DENSE)))


def test_on_auc_a_node_with_too_few_events_keeps_the_global_model_unless_local_ranks_clearly_better() -> None:
    x, y = rows(100, DENSE, seed=4)  # 6 inputs want 60 events of the rarer class: these rows have fewer
    assert min(y.sum(), len(y) - y.sum()) < 60
    _, same = personalise(
        exact(DENSE), LOGREG, x, y, methods=NOT_FEDPER, objective=OBJECTIVE, init_seed=0, seed=0, criterion="auc"
    )
    assert same.method == "global" and same.summary.criterion == "auc" and same.summary.default == "global"
    x, y = rows(100, -DENSE, seed=4)  # the reverse relation: the global model ranks these rows backwards
    _, reverse = personalise(
        exact(DENSE), LOGREG, x, y, methods=NOT_FEDPER, objective=OBJECTIVE, init_seed=0, seed=0, criterion="auc"
    )
    assert reverse.method != "global" and "validation AUC" in reverse.reason
    with pytest.raises(InvalidRequest, match="unknown selection criterion"):
        personalise(exact(DENSE), LOGREG, x, y, methods=NOT_FEDPER, objective=OBJECTIVE, init_seed=0, seed=0, criterion="f1")


def test_the_same_seed_gives_the_same_model_and_choice() -> None:
    spec = ModelSpec("mlp", {"hidden": [6], "dropout": 0.2})
    body = build_model(spec, 6, seed=7)
    OBJECTIVE.fit(body, *rows(300, DENSE, seed=4), epochs=2, seed=0, pull=0.0)
    x, y = rows(60, DENSE, seed=5)
    methods = {"local": {"epochs": 3}, "finetune": {"epochs": 2}, "fedper": {"epochs": 2}, "interpolate": {"alphas": [0.5]}}
    runs = [
        personalise(get_arrays(body), spec, x, y, methods=methods, objective=OBJECTIVE, init_seed=7, seed=s) for s in (1, 1, 2)
    ]
    (m1, c1), (m2, c2), (_, c3) = runs
    assert c1 == c2 and c1.summary != c3.summary
    np.testing.assert_array_equal(flatten(get_arrays(m1)), flatten(get_arrays(m2)))


def test_malformed_inputs_are_refused_before_training() -> None:
    x, y = rows(40, DENSE, seed=6)
    with pytest.raises(InvalidRequest, match="shape"):
        personalise(exact(SPARSE), LOGREG, x, y, methods={}, objective=OBJECTIVE, init_seed=0, seed=0)
    with pytest.raises(InvalidRequest, match="same length"):
        personalise(exact(DENSE), LOGREG, x, y[:-1], methods={}, objective=OBJECTIVE, init_seed=0, seed=0)
    x[0, 0] = np.nan
    with pytest.raises(InvalidRequest, match="NaN or infinite"):
        personalise(exact(DENSE), LOGREG, x, y, methods={}, objective=OBJECTIVE, init_seed=0, seed=0)
    with pytest.raises(InvalidRequest, match="fedper"):
        personalise(exact(DENSE), LOGREG, np.nan_to_num(x), y, methods={"fedper": {}}, objective=OBJECTIVE, init_seed=0, seed=0)


def test_on_the_task_validation_rows_the_chosen_model_is_returned_as_validated() -> None:
    """Judged on rows the global model never saw, trained on the same rows as every other topology: no refit."""
    x, y = rows(400, -DENSE, seed=8)  # this node's relation is the reverse of the global model's
    xv, yv = rows(120, -DENSE, seed=9)
    methods = {"local": {"epochs": 6}, "global": {}, "finetune": {"epochs": 3}}
    model, choice = personalise(
        exact(DENSE), LOGREG, x, y, methods=methods, objective=OBJECTIVE, init_seed=0, seed=0, validation=(xv, yv)
    )
    assert choice.summary.scheme == "the task's 120 validation rows, which no candidate trained on"
    assert choice.summary.rows == 120 and choice.summary.training_rows == 400
    assert {c.label for c in choice.summary.candidates} == {"global", "finetune(epochs=3)"}
    assert choice.method == "local" and choice.summary.default == "local(epochs=6)"
    assert {c.label: c.margin < 0 for c in choice.summary.candidates} == {"global": True, "finetune(epochs=3)": True}
    # local-only at its best, as the local-only topology: its best epoch on the validation rows, fitted on the others
    alone = build_model(LOGREG, 6, seed=0)
    OBJECTIVE.fit(alone, x, y, epochs=6, seed=0, pull=0.0)
    assert OBJECTIVE.losses(model, xv, yv).mean() <= OBJECTIVE.losses(alone, xv, yv).mean()
    with pytest.raises(InvalidRequest, match="validation rows have 5 columns"):
        personalise(
            exact(DENSE), LOGREG, x, y, methods=methods, objective=OBJECTIVE, init_seed=0, seed=0, validation=(xv[:, :5], yv)
        )
