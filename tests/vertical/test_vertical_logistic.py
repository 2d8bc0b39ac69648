"""federation.vertical.logistic: training on shares gives the model plaintext training gives, with the exact loss."""

from __future__ import annotations

import copy

import numpy as np

from federation.vertical.align import TEST, TRAIN, VALIDATION
from federation.vertical.helper import SeededHelper
from federation.vertical.logistic import Party, budgets, plain_step, shared_step, train


def city(seed: int, n: int = 1500) -> tuple[list[Party], np.ndarray, np.ndarray]:
    """Three parties with 2, 1 and 2 standardised columns; the label depends on all of them."""
    rng = np.random.default_rng(seed)
    columns = {"ecology": 2, "water": 1, "commerce": 2}
    x = {name: rng.normal(size=(n, width)) for name, width in columns.items()}
    x["ecology"] = np.hstack([x["ecology"], np.ones((n, 1))])  # the label party's intercept column
    logit = 1.2 * x["ecology"][:, 0] - 0.8 * x["water"][:, 0] + 1.5 * x["commerce"][:, 1] - 0.5
    labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    bound = budgets({name: m.shape[1] for name, m in x.items()})
    parties = [Party(name, m, bound[name]) for name, m in x.items()]
    roles = np.where(rng.random(n) < 0.7, TRAIN, np.where(rng.random(n) < 0.5, VALIDATION, TEST))
    return parties, labels, roles


def test_one_shared_step_gives_every_party_its_plaintext_gradient_and_the_label_party_the_validation_loss() -> None:
    parties, labels, roles = city(0)
    for party in parties:
        party.weights = np.random.default_rng(1).normal(size=party.weights.shape) * 0.5
    validation = roles == VALIDATION
    shared, shared_loss = shared_step(copy.deepcopy(parties), labels, roles == TRAIN, SeededHelper(2), validation)
    plain, plain_loss = plain_step(copy.deepcopy(parties), labels, roles == TRAIN, validation)
    for name in plain:
        assert np.allclose(shared[name], plain[name], atol=2e-5), name
    assert (
        shared_loss is not None and plain_loss is not None and abs(shared_loss - plain_loss) < 5e-5
    )  # fixed point: 2^-20 per input, times 16
    score = sum(p.features @ p.weights for p in parties)
    exact = np.mean(np.logaddexp(0, score[validation]) - labels[validation] * score[validation])
    assert abs(plain_loss - exact) < 1e-5  # the exact logistic loss, not a surrogate


def test_training_on_shares_reaches_the_weights_of_plaintext_training_and_recovers_the_signal() -> None:
    parties, labels, roles = city(3)
    reference = copy.deepcopy(parties)
    shared = train(parties, labels, roles, SeededHelper(4), max_steps=150, learning_rate=1.0, patience=1000)
    plain = train(reference, labels, roles, None, max_steps=150, learning_rate=1.0, patience=1000)
    assert abs(shared.best_step - plain.best_step) <= 5 and shared.steps == plain.steps == 150
    for mine, theirs in zip(parties, reference, strict=True):
        assert np.allclose(mine.weights, theirs.weights, atol=1e-3), mine.name
    weights = {p.name: p.weights for p in parties}
    assert weights["ecology"][0] > 0.8 and weights["water"][0] < -0.5 and weights["commerce"][1] > 1.0
    assert abs(weights["commerce"][0]) < 0.2  # a column with no signal stays near zero


def test_training_stops_early_where_the_validation_loss_stops_improving_and_keeps_the_best_weights() -> None:
    parties, labels, roles = city(6, n=600)
    history = train(parties, labels, roles, SeededHelper(7), max_steps=2000, learning_rate=2.0, l2=0.0, every=5, patience=3)
    assert history.steps < 2000  # stopped by the validation loss, not by the budget of steps
    losses = dict(history.losses)
    assert history.best_step == min(losses, key=lambda step: losses[step])
    assert history.steps - 1 - history.best_step == 3 * 5  # three evaluations without improvement, then stop


def test_a_party_over_its_budget_is_scaled_back_the_same_way_in_both_runs() -> None:
    parties, _, _ = city(5, n=200)
    party = parties[1]
    party.weights = np.array([100.0])
    score = party.partial_score()
    assert np.isclose(np.max(np.abs(score)), party.budget) and np.isclose(
        party.weights[0] * np.max(np.abs(party.features)), party.budget
    )
