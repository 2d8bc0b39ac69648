"""federation.personalise.methods: a declarative registry; every candidate trains and evaluates."""

from __future__ import annotations

import numpy as np
import pytest

from federation.errors import InvalidRequest
from federation.models import build_model
from federation.models.training import flatten, get_arrays
from federation.personalise import METHOD_NAMES, Candidate, binary_objective, parse_methods
from federation.personalise.methods import Start, head_of, interpolate, train_candidates
from federation.task import ModelSpec

LOGREG = ModelSpec("logreg")
MLP = ModelSpec("mlp", {"hidden": [6]})
OBJECTIVE = binary_objective(batch_size=16, learning_rate=0.05)
EVERY = {name: {} for name in METHOD_NAMES}


def rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] + rng.normal(scale=0.5, size=n) > 0).astype(np.float32)
    return x, y


def test_local_is_always_a_candidate_and_grids_expand_in_registry_order() -> None:
    candidates = parse_methods({"ditto": {"lambdas": [0.5, 2.0]}, "global": {}}, model=LOGREG)
    assert [c.label for c in candidates] == [
        "local(epochs=20)",
        "global",
        "ditto(lambda=0.5, epochs=10)",
        "ditto(lambda=2, epochs=10)",
    ]
    assert candidates[2].param("lambda") == 0.5


def test_the_default_interpolation_grid_excludes_local_and_global() -> None:
    alphas = [c.param("alpha") for c in parse_methods({"interpolate": {}}, model=LOGREG) if c.method == "interpolate"]
    assert alphas == [0.25, 0.5, 0.75]


def test_an_unknown_method_suggests_the_closest() -> None:
    with pytest.raises(InvalidRequest, match="unknown personalisation method 'finetnue'; did you mean 'finetune'"):
        parse_methods({"finetnue": {}}, model=LOGREG)


def test_an_unknown_hyperparameter_suggests_the_closest() -> None:
    with pytest.raises(InvalidRequest, match="no hyperparameter 'lambda'; did you mean 'lambdas'"):
        parse_methods({"ditto": {"lambda": [0.1]}}, model=LOGREG)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_methods({"interpolate": {"alphas": [0.0, 0.5]}, "local": {"epochs": 0}, "dito": {}}, model=LOGREG)
    message = caught.value.public
    assert "interpolate.alphas values must lie in (0, 1), got 0.0" in message
    assert "local.epochs must be an integer in 1..1000, got 0" in message
    assert "did you mean 'ditto'" in message


@pytest.mark.parametrize("value", [[], [0.1, 0.1], 0.5, [float("nan")], [True]])
def test_a_grid_must_be_a_list_of_distinct_finite_numbers(value: object) -> None:
    with pytest.raises(InvalidRequest, match=r"ditto\.lambdas"):
        parse_methods({"ditto": {"lambdas": value}}, model=LOGREG)  # type: ignore[dict-item]


def test_fedper_is_refused_for_logreg_with_a_clear_error() -> None:
    with pytest.raises(
        InvalidRequest, match="'fedper' needs a shared body and a separate head: it works for 'mlp', not for 'logreg'"
    ):
        parse_methods({"fedper": {}}, model=LOGREG)
    with pytest.raises(InvalidRequest, match="at least two linear layers"):
        head_of(build_model(LOGREG, 4, seed=0))


@pytest.mark.parametrize("spec", [LOGREG, MLP])
def test_every_candidate_trains_and_evaluates(spec: ModelSpec) -> None:
    methods = {k: v for k, v in EVERY.items() if spec.name == "mlp" or k != "fedper"}
    candidates = parse_methods(methods, model=spec)
    x, y = rows(120)
    global_model = build_model(spec, 4, seed=0)
    OBJECTIVE.fit(global_model, *rows(400, seed=1), epochs=3, seed=0, pull=0.0)
    start = Start(spec, 4, 0, get_arrays(global_model))
    models = train_candidates(candidates, start, x, y, local=candidates[0], fit=OBJECTIVE.fit, seed=5)
    assert list(models) == list(candidates)
    g = flatten(start.global_arrays)
    for candidate, model in models.items():
        losses = OBJECTIVE.losses(model, x, y)
        assert losses.shape == (120,) and np.all(np.isfinite(losses)) and np.all(losses >= 0)
        moved = float(np.abs(flatten(get_arrays(model)) - g).max())
        assert (moved == 0.0) == (candidate.method == "global"), candidate.label
    ditto = [flatten(get_arrays(models[c])) for c in candidates if c.method == "ditto"]
    pulls = [float(np.linalg.norm(w - g)) for w in ditto]
    assert pulls == sorted(pulls, reverse=True), "a stronger pull keeps the personal model nearer the global one"


def test_interpolation_is_weight_by_weight_with_alpha_on_global() -> None:
    g = get_arrays(build_model(MLP, 4, seed=1))
    local = get_arrays(build_model(MLP, 4, seed=2))
    mixed = flatten(interpolate(g, local, 0.25))
    np.testing.assert_allclose(mixed, 0.25 * flatten(g) + 0.75 * flatten(local), rtol=1e-6)


def test_fedper_retrains_only_the_head_and_leaves_the_model_trainable() -> None:
    (candidate,) = [c for c in parse_methods({"fedper": {"epochs": 3}}, model=MLP) if c.method == "fedper"]
    start = Start(MLP, 4, 0, get_arrays(build_model(MLP, 4, seed=3)))
    local = Candidate("local", (("epochs", 1),))
    model = train_candidates([candidate], start, *rows(80), local=local, fit=OBJECTIVE.fit, seed=0)[candidate]
    before, after = dict(start.global_arrays), dict(get_arrays(model))
    head = {"2.weight", "2.bias"}
    assert all(np.array_equal(before[k], after[k]) for k in before if k not in head)
    assert all(not np.array_equal(before[k], after[k]) for k in head)
    assert all(p.requires_grad for p in model.parameters())


def test_with_a_stop_loss_the_local_model_keeps_its_best_epoch() -> None:
    spec = ModelSpec("mlp", {"hidden": [8]})
    x, y = rows(60)
    xv, yv = rows(200, seed=3)
    local = Candidate("local", (("epochs", 40.0),))
    start = Start(spec, 4, 0, get_arrays(build_model(spec, 4, seed=0)))
    held_loss = lambda m: float(OBJECTIVE.losses(m, xv, yv).mean())  # noqa: E731
    stopped = train_candidates([local], start, x, y, local=local, fit=OBJECTIVE.fit, seed=1, stop=held_loss)[local]
    plain = train_candidates([local], start, x, y, local=local, fit=OBJECTIVE.fit, seed=1)[local]
    assert held_loss(stopped) < held_loss(plain)  # 40 epochs on 60 rows overfit; the best epoch did not
