"""federation.vertical.program: each party's part of a run, driven by mail, trains the plaintext model and shows nothing more.

The transcript tests play a curious party: they keep everything it was sent
and check that it is what the threat model says (its own gradient, the
label party's stop decisions, uniform shares), whatever the other parties'
columns and labels are.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

from federation.errors import InvalidRequest, ProtocolOrderError
from federation.vertical import local
from federation.vertical.align import TEST, TRAIN, VALIDATION
from federation.vertical.logistic import Party, budgets, train
from federation.vertical.mailbox import Letters, Mailbox, Runner
from federation.vertical.program import Local, Plan, program

WIDTHS = {"ecology": 3, "water": 2, "statistics": 1, "commerce": 1}  # ecology's last column is the intercept


def city(seed: int, n: int = 400, labels_missing: float = 0.0) -> tuple[Plan, dict[str, Local]]:
    rng = np.random.default_rng(seed)
    x = {name: rng.normal(size=(n, width)) for name, width in WIDTHS.items()}
    x["ecology"][:, -1] = 1.0
    logit = x["ecology"][:, 0] - x["water"][:, 1] + 1.5 * x["commerce"][:, 0] - 0.5
    labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    labels[rng.random(n) < labels_missing] = np.nan
    roles = rng.choice([TRAIN, VALIDATION, TEST], size=n, p=[0.6, 0.2, 0.2]).astype(np.int8)
    plan = Plan(
        tuple(WIDTHS), "ecology", "water", "statistics", WIDTHS, budgets(WIDTHS), learning_rate=2.0, l2=1e-3, max_steps=40
    )
    names = list(WIDTHS)
    pair = {frozenset((a, b)): rng.bytes(32) for i, a in enumerate(names) for b in names[i + 1 :]}
    locals_ = {
        a: Local(
            x[a], roles, {b: pair[frozenset((a, b))] for b in names if b != a}, rng.bytes(32), labels if a == "ecology" else None
        )
        for a in names
    }
    return plan, locals_


def reference(plan: Plan, locals_: dict[str, Local]) -> tuple[list[Party], object]:
    """The same model trained in float by `logistic.train`, unlabelled firms left out of every role."""
    labels = locals_["ecology"].labels
    assert labels is not None
    roles = np.where(np.isfinite(labels), locals_["ecology"].roles, TEST + 1)
    parties = [Party(name, locals_[name].features.copy(), plan.budgets[name]) for name in plan.owners]
    history = train(
        parties, np.nan_to_num(labels), roles, None, max_steps=plan.max_steps, learning_rate=plan.learning_rate, l2=plan.l2
    )
    return parties, history


def test_a_run_in_mail_gives_every_party_the_weights_of_plaintext_training_and_the_label_party_alone_the_scores() -> None:
    plan, locals_ = city(0)
    outcomes = local.run(plan, locals_)
    parties, history = reference(plan, locals_)
    for party in parties:
        assert np.allclose(outcomes[party.name].weights, party.weights, atol=2e-5), party.name
    assert outcomes["ecology"].best_step == history.best_step and outcomes["ecology"].steps == history.steps  # type: ignore[attr-defined]
    scores = sum(p.features @ p.weights for p in parties)
    assert np.allclose(outcomes["ecology"].scores, scores, atol=2e-4)
    assert all(outcomes[name].scores is None and not outcomes[name].losses for name in plan.owners if name != "ecology")


def test_firms_without_a_label_are_left_out_and_nobody_but_the_label_party_learns_which_they_are() -> None:
    plan, locals_ = city(1, labels_missing=0.2)
    outcomes = local.run(plan, locals_)
    # the divisor is the public count of training rows, the reference's the labelled ones: compare the direction
    parties, _ = reference(plan, locals_)
    for party in parties:
        mine = outcomes[party.name].weights
        cosine = mine @ party.weights / (np.linalg.norm(mine) * np.linalg.norm(party.weights))
        assert cosine > 0.99, party.name


def received(plan: Plan, locals_: dict[str, Local]) -> dict[str, list[Letters]]:
    transcript: dict[str, list[Letters]] = {}
    local.run(plan, locals_, transcript)
    return transcript


def names_and_shapes(letters: list[Letters]) -> list[tuple[str, str, tuple[int, ...]]]:
    return sorted((sender, name, v.shape) for round_ in letters for sender, items in round_.items() for name, v in items.items())


def test_an_input_party_is_sent_only_its_own_gradient_shares_and_the_label_partys_decisions() -> None:
    plan, locals_ = city(2)
    seen = received(plan, locals_)["commerce"]
    kinds = {name.split("/")[-1] for _, name, _ in names_and_shapes(seen)}
    assert kinds == {"gradient", "control"}
    senders = {sender for sender, name, _ in names_and_shapes(seen) if name.endswith("gradient")}
    assert senders == {"ecology", "water"}


@pytest.mark.parametrize("who", ["water", "statistics", "commerce"])
def test_what_a_party_receives_does_not_depend_on_the_labels_or_another_partys_columns(who: str) -> None:
    """Same names, shapes and order of mail, and every share uniform, with the real data or random data of the same shape."""
    plan, real = city(3)
    fixed = replace(plan, max_steps=6, patience=100)  # the same number of steps either way (the stop step is declared)
    rng = np.random.default_rng(9)
    fake = copy.deepcopy(real)
    fake["ecology"] = replace(fake["ecology"], labels=rng.integers(0, 2, size=len(real["ecology"].roles)).astype(float))
    for name in WIDTHS:
        if name != who:
            fake[name] = replace(fake[name], features=rng.normal(size=real[name].features.shape) * 3)
    seen_real, seen_fake = received(fixed, real)[who], received(fixed, fake)[who]
    assert names_and_shapes(seen_real) == names_and_shapes(seen_fake)
    shares = np.concatenate(
        [
            v.ravel()
            for round_ in seen_fake
            for items in round_.values()
            for n, v in items.items()
            if not n.endswith(("control", "gradient"))
        ]
        or [np.zeros(0, dtype=np.uint64)]
    )
    if who == "water":  # the compute party: everything it is sent is a share or an opening masked by the helper
        assert shares.size > 100_000
        top = (shares >> np.uint64(63)).astype(float)
        low = (shares & np.uint64(0xFF)).astype(int)
        assert abs(top.mean() - 0.5) < 5 * 0.5 / np.sqrt(shares.size)
        counts = np.bincount(low, minlength=256)
        expected = shares.size / 256
        assert np.sum((counts - expected) ** 2 / expected) < 400  # chi-square, 255 degrees of freedom
    else:  # the helper and an input party are sent no share of anybody's data at all
        assert shares.size == 0


def test_a_letter_of_the_wrong_shape_is_refused_with_its_sender_and_name() -> None:
    plan, locals_ = city(4)
    mailbox = Mailbox("commerce", frozenset(WIDTHS) - {"commerce"})
    runner = Runner(mailbox, program(plan, "commerce", locals_["commerce"]))
    runner.step({})
    runner.step({"ecology": {"0/gradient": np.zeros(1, dtype=np.uint64)}})
    with pytest.raises(InvalidRequest, match="water's '0/gradient'"):
        runner.step({"water": {"0/gradient": np.zeros(2, dtype=np.uint64)}})


def test_a_replayed_letter_and_mail_from_outside_the_run_are_refused() -> None:
    mailbox = Mailbox("commerce", frozenset({"ecology", "water"}))
    mailbox.deliver({"ecology": {"0/control": np.zeros(2, dtype=np.uint64)}})
    with pytest.raises(InvalidRequest, match="arrived twice"):
        mailbox.deliver({"ecology": {"0/control": np.zeros(2, dtype=np.uint64)}})
    with pytest.raises(InvalidRequest, match="takes no mail"):
        mailbox.deliver({"ghost": {"0/control": np.zeros(2, dtype=np.uint64)}})


def test_a_party_that_drops_out_stalls_the_run_with_the_waiting_parties_named() -> None:
    plan, locals_ = city(5)
    peers = frozenset(plan.owners)
    runners = {n: Runner(Mailbox(n, peers - {n}), program(plan, n, locals_[n])) for n in plan.owners if n != "commerce"}
    runners["commerce"] = Runner(Mailbox("commerce", peers - {"commerce"}), lambda mailbox: iter(()))  # sends nothing, ever
    with pytest.raises(ProtocolOrderError, match="stalled"):
        local.drive(runners)


def test_the_label_party_alone_trains_in_float_on_its_own_columns_and_sends_nothing() -> None:
    plan, locals_ = city(3, labels_missing=0.1)
    alone = replace(
        plan, owners=("ecology",), compute="ecology", helper="ecology", widths={"ecology": 3}, budgets=budgets({"ecology": 3})
    )
    transcript: dict[str, list[Letters]] = {}
    outcome = local.run(alone, {"ecology": locals_["ecology"]}, transcript)["ecology"]
    assert not transcript  # not one letter
    labels = locals_["ecology"].labels
    assert labels is not None
    party = Party("ecology", locals_["ecology"].features.copy(), alone.budgets["ecology"])
    history = train([party], np.nan_to_num(labels), np.where(np.isfinite(labels), locals_["ecology"].roles, TEST + 1), None,
                    max_steps=alone.max_steps, learning_rate=alone.learning_rate, l2=alone.l2)  # fmt: skip
    assert np.array_equal(outcome.weights, party.weights) and outcome.best_step == history.best_step
    assert outcome.scores is not None and np.allclose(outcome.scores, party.features @ party.weights)
