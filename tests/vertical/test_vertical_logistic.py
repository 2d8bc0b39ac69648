"""federation.vertical.logistic: training on shares gives the model plaintext training gives, with the exact loss."""

from __future__ import annotations

import copy

import numpy as np
from test_vertical_sigmoid import RandomHelper

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
    train_rows = rng.random(n) < 0.7
    return parties, labels, train_rows


def test_one_shared_step_gives_every_party_its_plaintext_gradient() -> None:
    parties, labels, train_rows = city(0)
    for party in parties:
        party.weights = np.random.default_rng(1).normal(size=party.weights.shape) * 0.5
    shared = shared_step(copy.deepcopy(parties), labels, train_rows, RandomHelper(2))
    plain = plain_step(copy.deepcopy(parties), labels, train_rows)
    for name in plain:
        assert np.allclose(shared[name], plain[name], atol=2e-5), name


def test_training_on_shares_reaches_the_weights_of_plaintext_training_and_recovers_the_signal() -> None:
    parties, labels, train_rows = city(3)
    reference = copy.deepcopy(parties)
    train(parties, labels, train_rows, RandomHelper(4), steps=150, learning_rate=1.0)
    train(reference, labels, train_rows, None, steps=150, learning_rate=1.0)
    for mine, theirs in zip(parties, reference, strict=True):
        assert np.allclose(mine.weights, theirs.weights, atol=1e-3), mine.name
    weights = {p.name: p.weights for p in parties}
    assert weights["ecology"][0] > 0.8 and weights["water"][0] < -0.5 and weights["commerce"][1] > 1.0
    assert abs(weights["commerce"][0]) < 0.2  # a column with no signal stays near zero


def test_a_party_over_its_budget_is_scaled_back_the_same_way_in_both_runs() -> None:
    parties, _, _ = city(5, n=200)
    party = parties[1]
    party.weights = np.array([100.0])
    score = party.partial_score()
    assert np.isclose(np.max(np.abs(score)), party.budget) and np.isclose(
        party.weights[0] * np.max(np.abs(party.features)), party.budget
    )
