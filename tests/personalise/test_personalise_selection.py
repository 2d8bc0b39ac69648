"""federation.personalise.selection and split: keep local-only unless another candidate clearly wins."""

from __future__ import annotations

import numpy as np
import pytest

from federation.errors import InvalidRequest
from federation.personalise import Candidate, ValidationRules, carve
from federation.personalise.selection import choose, multiplier
from federation.personalise.split import Split

LOCAL = Candidate("local", (("epochs", 20),))
GLOBAL = Candidate("global")
GRID = [Candidate("ditto", (("lambda", float(i)), ("epochs", 10))) for i in range(1, 9)]
RULES = ValidationRules()


def holdout(n: int) -> Split:
    return Split("holdout", (np.arange(n),), n, True)


def pick(losses: dict[Candidate, np.ndarray], seed: int = 0) -> Candidate:
    n = len(losses[LOCAL])
    return choose(losses, local=LOCAL, split=holdout(n), training_rows=5 * n, few_rows=100, resamples=1000, seed=seed).candidate


def test_a_clear_winner_is_chosen_and_the_summary_holds_only_aggregates() -> None:
    rng = np.random.default_rng(0)
    base = rng.exponential(0.6, 200)
    losses = {LOCAL: base, GLOBAL: base - 0.2 + rng.normal(0, 0.05, 200), GRID[0]: base + 0.1}
    choice = choose(losses, local=LOCAL, split=holdout(200), training_rows=1000, few_rows=100, resamples=1000, seed=0)
    assert choice.candidate == GLOBAL and choice.method == "global" and choice.params == {}
    assert choice.reason.startswith("chose global: its mean validation loss is 0.2")
    summary = choice.summary
    assert summary.rows == 200 and not summary.few_local_rows and summary.multiplier >= 1.0
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
    choice = choose(losses, local=LOCAL, split=holdout(100), training_rows=500, few_rows=100, resamples=1000, seed=0)
    assert choice.candidate == LOCAL
    assert "kept local-only: no candidate beat it" in choice.reason and "global" in choice.reason


def test_of_several_significant_winners_the_lowest_mean_loss_is_taken() -> None:
    base = np.random.default_rng(2).exponential(0.6, 150)
    losses = {LOCAL: base, GLOBAL: base - 0.1, GRID[0]: base - 0.3, GRID[1]: base - 0.2}
    assert pick(losses) == GRID[0]


def test_many_candidates_that_are_no_better_rarely_displace_local() -> None:
    """Eight null candidates: a bare one-SE rule would switch about 75 % of the time; the widened SE about 16 %."""
    switched = 0
    for seed in range(120):
        rng = np.random.default_rng(seed)
        base = rng.exponential(0.5, 80)
        losses = {LOCAL: base} | {c: base + rng.normal(0, 0.1, 80) for c in GRID}
        switched += pick(losses, seed=seed) != LOCAL
    assert switched / 120 <= 0.27


def test_the_multiplier_grows_with_independent_candidates_and_not_with_copies() -> None:
    rng = np.random.default_rng(3)
    one = rng.normal(0, 1, (200, 1))
    independent = rng.normal(0, 1, (200, 8))
    se = lambda d: d.std(axis=0, ddof=1) / np.sqrt(len(d))  # noqa: E731
    single = multiplier(one, se(one), resamples=2000, seed=0)
    copies = np.repeat(one, 8, axis=1)
    assert single == pytest.approx(1.0, abs=0.1)
    assert multiplier(copies, se(copies), resamples=2000, seed=0) == pytest.approx(single)
    assert multiplier(independent, se(independent), resamples=2000, seed=0) > 1.4


def test_a_diverged_candidate_is_left_out_and_a_diverged_local_is_refused() -> None:
    base = np.full(50, 0.5) + np.linspace(0, 0.1, 50)
    broken = np.full(50, np.nan)
    choice = choose(
        {LOCAL: base, GLOBAL: broken}, local=LOCAL, split=holdout(50), training_rows=250, few_rows=100, resamples=200, seed=0
    )
    assert choice.candidate == LOCAL and choice.summary.diverged == ("global",) and choice.summary.candidates == ()
    with pytest.raises(InvalidRequest, match="local training diverged"):
        choose(
            {LOCAL: broken, GLOBAL: base}, local=LOCAL, split=holdout(50), training_rows=250, few_rows=100, resamples=200, seed=0
        )


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
