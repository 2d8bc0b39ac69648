"""federation.personalise.selection and split: keep the default unless another candidate clearly wins."""

from __future__ import annotations

import numpy as np
import pytest

from federation.errors import InvalidRequest
from federation.personalise import Candidate, ValidationRules, carve
from federation.personalise.criteria import mean_loss, rank_loss
from federation.personalise.selection import Choice, choose, multiplier
from federation.personalise.split import Split, held_out, too_few_for_local

LOCAL = Candidate("local", (("epochs", 20),))
GLOBAL = Candidate("global")
GRID = [Candidate("ditto", (("lambda", float(i)), ("epochs", 10))) for i in range(1, 9)]
RULES = ValidationRules()


def holdout(n: int) -> Split:
    return Split("holdout", (np.arange(n),), n, True)


def on_loss(losses: dict[Candidate, np.ndarray], *, seed: int = 0, default: Candidate = LOCAL, few: str = "") -> Choice:
    n = len(losses[default])
    return choose(
        losses,
        mean_loss,
        criterion="loss",
        default=default,
        split=holdout(n),
        training_rows=5 * n,
        few_local=few,
        resamples=1000,
        seed=seed,
    )


def pick(losses: dict[Candidate, np.ndarray], seed: int = 0) -> Candidate:
    return on_loss(losses, seed=seed).candidate


def test_a_clear_winner_is_chosen_and_the_summary_holds_only_aggregates() -> None:
    rng = np.random.default_rng(0)
    base = rng.exponential(0.6, 200)
    losses = {LOCAL: base, GLOBAL: base - 0.2 + rng.normal(0, 0.05, 200), GRID[0]: base + 0.1}
    choice = on_loss(losses)
    assert choice.candidate == GLOBAL and choice.method == "global" and choice.params == {}
    assert choice.reason.startswith("chose global: its mean validation loss is 0.2")
    summary = choice.summary
    assert summary.rows == 200 and not summary.few_local and summary.multiplier >= 1.0
    assert summary.default == LOCAL.label and summary.criterion == "loss"
    (g, d) = summary.candidates
    assert (
        g.label == "global"
        and g.margin == pytest.approx(0.2, abs=0.02)
        and g.margin > g.needed == pytest.approx(summary.multiplier * g.se)
    )
    assert d.margin == pytest.approx(-0.1)


def test_a_win_smaller_than_the_standard_error_keeps_local() -> None:
    rng = np.random.default_rng(1)
    base = rng.exponential(0.6, 100)
    noise = rng.normal(0, 0.3, 100)
    losses = {LOCAL: base, GLOBAL: base - 0.01 + noise - noise.mean()}  # 0.01 lower, SE about 0.03
    choice = on_loss(losses)
    assert choice.candidate == LOCAL
    assert "kept local-only: no candidate beat it" in choice.reason and "global" in choice.reason


def test_of_several_significant_winners_the_lowest_mean_loss_is_taken() -> None:
    base = np.random.default_rng(2).exponential(0.6, 150)
    losses = {LOCAL: base, GLOBAL: base - 0.1, GRID[0]: base - 0.3, GRID[1]: base - 0.2}
    assert pick(losses) == GRID[0]


def test_many_candidates_that_are_no_better_rarely_displace_local() -> None:
    """Eight null candidates: a bare one-SE rule would switch about 75 % of the time; the simultaneous 95 % rule about 5 %."""
    switched = 0
    for seed in range(120):
        rng = np.random.default_rng(seed)
        base = rng.exponential(0.5, 80)
        losses = {LOCAL: base} | {c: base + rng.normal(0, 0.1, 80) for c in GRID}
        switched += pick(losses, seed=seed) != LOCAL
    assert switched / 120 <= 0.12


def test_the_multiplier_grows_with_independent_candidates_and_not_with_copies() -> None:
    rng = np.random.default_rng(3)
    one = mean_loss(rng.normal(0, 1, (200, 1))).influence
    independent = mean_loss(rng.normal(0, 1, (200, 8))).influence
    se = lambda d: np.sqrt((d**2).sum(axis=0))  # noqa: E731
    single = multiplier(one, se(one), resamples=2000, seed=0)
    copies = np.repeat(one, 8, axis=1)
    assert single == pytest.approx(1.645, abs=0.1)  # one candidate: the one-sided 95 % normal quantile
    assert multiplier(copies, se(copies), resamples=2000, seed=0) == pytest.approx(single)
    assert multiplier(independent, se(independent), resamples=2000, seed=0) > 2.2


def test_a_diverged_candidate_is_left_out_and_a_diverged_local_is_refused() -> None:
    base = np.full(50, 0.5) + np.linspace(0, 0.1, 50)
    broken = np.full(50, np.nan)
    choice = on_loss({LOCAL: base, GLOBAL: broken})
    assert choice.candidate == LOCAL and choice.summary.diverged == ("global",) and choice.summary.candidates == ()
    with pytest.raises(InvalidRequest, match="local training diverged"):
        on_loss({LOCAL: broken, GLOBAL: base})


def test_with_too_few_local_events_the_global_model_is_the_default_and_the_reason_says_why() -> None:
    rng = np.random.default_rng(6)
    base = rng.exponential(0.6, 100)
    few = "fewer than 60 rows of the rarer class (10 per each of 6 model inputs), too few for a trustworthy local model"
    kept = on_loss({GLOBAL: base, LOCAL: base - 0.01 + rng.normal(0, 0.3, 100)}, default=GLOBAL, few=few)
    assert kept.candidate == GLOBAL and kept.summary.default == "global"
    assert kept.reason.startswith(f"kept the global model: the global model is the default because {few}; no candidate")
    moved = on_loss({GLOBAL: base, LOCAL: base - 0.3}, default=GLOBAL, few=few)
    assert moved.candidate == LOCAL and "below the global model's" in moved.reason


def test_too_few_for_local_counts_the_rarer_class_or_the_rows_and_never_names_a_count() -> None:
    rules = ValidationRules(events_per_input=10)
    y = np.r_[np.zeros(500), np.ones(49)]
    assert too_few_for_local(y, binary=True, inputs=5, rules=rules).startswith("fewer than 50 rows of the rarer class")
    assert "49" not in too_few_for_local(y, binary=True, inputs=5, rules=rules)
    assert too_few_for_local(np.r_[y, 1.0], binary=True, inputs=5, rules=rules) == ""
    assert too_few_for_local(np.zeros(40), binary=False, inputs=5, rules=rules).startswith("fewer than 50 training rows")


def test_the_task_validation_rows_follow_the_fitting_rows_and_must_hold_both_classes() -> None:
    split = held_out(np.zeros(100), np.r_[np.zeros(20), np.ones(10)], binary=True, rules=RULES)
    assert split.enough and split.scheme == "task" and split.rows == 30
    assert np.array_equal(split.folds[0], np.arange(100, 130)) and np.array_equal(split.training_rows(0, 130), np.arange(100))
    assert "the task's 30 validation rows, which no candidate trained on" == split.description
    assert (
        "one class has fewer than 5" in held_out(np.zeros(100), np.r_[np.zeros(40), np.ones(2)], binary=True, rules=RULES).problem
    )
    assert "10 validation rows are too few" in held_out(np.zeros(100), np.linspace(0, 1, 10), binary=False, rules=RULES).problem


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    positives, negatives = scores[y == 1], scores[y == 0]
    wins = (positives[:, None] > negatives[None, :]) + 0.5 * (positives[:, None] == negatives[None, :])
    return float(wins.mean())


def test_rank_loss_is_one_minus_the_auc_with_delong_variance() -> None:
    rng = np.random.default_rng(7)
    y = (rng.random(300) < 0.3).astype(np.float64)
    a = y + rng.normal(0, 1.0, 300)
    b = np.round(y + rng.normal(0, 0.7, 300), 1)  # ties count one half
    judged = rank_loss(np.stack([a, b], axis=1), y)
    assert judged.figure == pytest.approx([1 - auc(a, y), 1 - auc(b, y)])
    assert np.allclose(judged.influence.sum(axis=0), 0.0)
    # DeLong's variance of one AUC: var(positives' components) / m + var(negatives' components) / n
    pos, neg = a[y == 1], a[y == 0]
    v10 = np.array([np.mean((p > neg) + 0.5 * (p == neg)) for p in pos])
    v01 = np.array([np.mean((pos > q) + 0.5 * (pos == q)) for q in neg])
    delong = v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)
    assert float((judged.influence[:, 0] ** 2).sum()) == pytest.approx(delong)
    with pytest.raises(InvalidRequest, match="both classes"):
        rank_loss(np.ones((5, 1)), np.zeros(5))


def test_on_auc_a_recalibrated_model_that_ranks_worse_does_not_win() -> None:
    """A candidate can win on cross-entropy by fixing the base rate while ranking worse; judged on AUC it loses."""
    rng = np.random.default_rng(8)
    y = (rng.random(400) < 0.1).astype(np.float64)
    signal = 2.5 * y + rng.normal(0, 1, 400)
    ranks_well = signal + 3.0  # miscalibrated: predicts far too many positives
    recalibrated = 0.6 * signal + rng.normal(0, 0.8, 400) - 2.5  # right base rate, noisier ranking
    judge = lambda scores: rank_loss(scores, y)  # noqa: E731
    from federation.personalise.objective import bce_row_losses

    on_losses = on_loss({GLOBAL: bce_row_losses(ranks_well, y), LOCAL: bce_row_losses(recalibrated, y)}, default=GLOBAL)
    assert on_losses.candidate == LOCAL
    choice = choose(
        {GLOBAL: ranks_well, LOCAL: recalibrated},
        judge,
        criterion="auc",
        default=GLOBAL,
        split=holdout(400),
        training_rows=2000,
        few_local="",
        resamples=1000,
        seed=0,
    )
    assert choice.candidate == GLOBAL and choice.summary.criterion == "auc"
    assert "in validation AUC" in choice.reason


def test_a_large_node_holds_out_a_stratified_fraction() -> None:
    y = np.r_[np.zeros(800), np.ones(200)].astype(np.float32)
    split = carve(y, binary=True, rules=RULES, seed=4)
    (held,) = split.folds
    assert split.scheme == "holdout" and split.enough and len(held) == 200
    assert int(y[held].sum()) == 40
    assert np.array_equal(held, carve(y, binary=True, rules=RULES, seed=4).folds[0])
    assert not np.array_equal(held, carve(y, binary=True, rules=RULES, seed=5).folds[0])


def test_a_small_node_cross_fits_so_every_row_is_validated_once() -> None:
    y = (np.arange(60) % 3 == 0).astype(np.float32)
    split = carve(y, binary=True, rules=RULES, seed=0)
    assert split.scheme == "cross-fit" and split.enough and split.rows == 60
    assert np.array_equal(np.sort(np.concatenate(split.folds)), np.arange(60))
    assert all(y[fold].sum() == 4 for fold in split.folds)  # 20 positives dealt over 5 folds
    assert "5-fold cross-fitting over all 60 training rows" in split.description


@pytest.mark.parametrize(
    ("y", "binary", "problem"),
    [
        (np.r_[np.zeros(8), np.ones(7)], True, "15 validation rows are too few to choose on (at least 20 needed)"),
        (np.r_[np.zeros(57), np.ones(3)], True, "one class has fewer than 5 validation rows"),
        (np.linspace(0, 1, 12), False, "12 validation rows are too few"),
    ],
)
def test_too_few_validation_rows_mean_no_choice(y: np.ndarray, binary: bool, problem: str) -> None:
    split = carve(y.astype(np.float32), binary=binary, rules=RULES, seed=0)
    assert not split.enough and split.folds == () and problem in split.problem


def test_rules_refuse_nonsense() -> None:
    with pytest.raises(InvalidRequest, match="fraction must be in"):
        ValidationRules(fraction=0.9)
    with pytest.raises(InvalidRequest, match="min_rows"):
        ValidationRules(min_rows=3)
