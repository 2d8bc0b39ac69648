"""federation.report.statistics: paired gains, bootstrap coverage, share hurt, smallest quartile, plain sentences.

The coverage test simulates many experiments at once: each simulated experiment is one
party of a single `SeedMetrics`, so one vectorised bootstrap call covers them all.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.report.statistics import (
    MIN_TRAIN_ROWS,
    SeedMetrics,
    bootstrap_intervals,
    explain_disagreement,
    flag_small_parties,
    smallest_quartile,
    summarise,
    t_quantile,
)

NAN = math.nan


def metrics(
    local: dict[str, list[float]], fed: dict[str, list[float]], *, higher: bool = True, sizes: dict[str, int] | None = None
) -> SeedMetrics:
    return SeedMetrics(
        values={"local-only": local, "federated": fed},
        train_sizes=sizes or dict.fromkeys(local, 100),
        higher_is_better=higher,
    )


def test_the_interval_covers_a_known_difference_at_about_the_stated_rate() -> None:
    rng = np.random.default_rng(11)
    experiments, n_seeds, true_gain = 400, 10, 0.03
    local = 0.7 + rng.normal(0, 0.04, (experiments, n_seeds))
    fed = local + true_gain + rng.normal(0, 0.02, (experiments, n_seeds))  # paired: shares the seed's noise
    parties = [f"p{i}" for i in range(experiments)]
    result = summarise(metrics(dict(zip(parties, local.tolist(), strict=True)), dict(zip(parties, fed.tolist(), strict=True))))
    stats = [result.party("federated", p) for p in parties]
    covered = np.mean([s.gain_low <= true_gain <= s.gain_high for s in stats])
    assert 0.90 <= covered <= 0.99
    assert np.mean([s.gain_mean for s in stats]) == pytest.approx(true_gain, abs=0.002)


@pytest.mark.parametrize(
    ("n_seeds", "confidence", "low", "high"), [(5, 0.95, 0.88, 0.97), (20, 0.95, 0.92, 0.98), (10, 0.80, 0.75, 0.85)]
)
def test_coverage_holds_for_other_seed_counts_and_levels(n_seeds: int, confidence: float, low: float, high: float) -> None:
    """2000 experiments straight through the bootstrap, so the coverage estimate is within about ±0.01."""
    gains = 0.03 + np.random.default_rng(n_seeds).standard_t(5, (2000, n_seeds)) * 0.02  # heavier tails than normal
    intervals = bootstrap_intervals(gains, confidence=confidence)
    covered = np.mean((intervals[:, 0] <= 0.03) & (0.03 <= intervals[:, 1]))
    assert low <= covered <= high


@pytest.mark.parametrize(
    ("p", "df", "expected"), [(0.975, 1, 12.7062), (0.975, 2, 4.3027), (0.975, 9, 2.2622), (0.995, 30, 2.7500), (0.9, 5, 1.4759)]
)
def test_t_quantiles_match_published_tables(p: float, df: int, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-4)


def test_lower_is_better_flips_the_sign_so_that_positive_means_better() -> None:
    rmse = summarise(metrics({"a": [10.0, 11.0]}, {"a": [8.0, 8.5]}, higher=False))
    assert rmse.party("federated", "a").gains == (2.0, 2.5)
    assert rmse.party("federated", "a").gain_low > 0
    auc = summarise(metrics({"a": [10.0, 11.0]}, {"a": [8.0, 8.5]}, higher=True))
    assert auc.party("federated", "a").gains == (-2.0, -2.5)
    assert auc.topology("federated").share_hurt == 1.0 and rmse.topology("federated").share_hurt == 0.0


values = st.lists(st.floats(-5, 5, allow_nan=False), min_size=3, max_size=8)


@settings(max_examples=30, deadline=None)
@given(local=values, shift=values)
def test_flipping_the_direction_mirrors_every_gain_and_interval(local: list[float], shift: list[float]) -> None:
    n = min(len(local), len(shift))
    fed = [a + b for a, b in zip(local[:n], shift[:n], strict=True)]
    up = summarise(metrics({"a": local[:n]}, {"a": fed}, higher=True), resamples=200).party("federated", "a")
    down = summarise(metrics({"a": local[:n]}, {"a": fed}, higher=False), resamples=200).party("federated", "a")
    assert down.gains == pytest.approx([-g for g in up.gains])
    assert down.gain_mean == pytest.approx(-up.gain_mean, abs=1e-12)
    assert (down.gain_low, down.gain_high) == pytest.approx((-up.gain_high, -up.gain_low), abs=1e-9)


def test_share_hurt_separates_point_estimates_from_significant_harm() -> None:
    local = {p: [0.70] * 6 for p in "abcd"}
    fed = {
        "a": [0.60, 0.61, 0.59, 0.60, 0.62, 0.58],  # clearly worse
        "b": [0.75, 0.62, 0.74, 0.63, 0.72, 0.65],  # mean 0.685: worse, within noise
        "c": [0.80, 0.79, 0.81, 0.80, 0.82, 0.78],  # clearly better
        "d": [0.65, 0.78, 0.66, 0.77, 0.68, 0.76],  # mean 0.7167: better, within noise
    }
    result = summarise(metrics(local, fed))
    assert [result.party("federated", p).hurt for p in "abcd"] == [True, True, False, False]
    assert [result.party("federated", p).significantly_hurt for p in "abcd"] == [True, False, False, False]
    assert result.party("federated", "c").significantly_better and not result.party("federated", "d").significantly_better
    summary = result.topology("federated")
    assert (summary.share_hurt, summary.share_significantly_hurt, summary.n_parties) == (0.5, 0.25, 4)
    assert summary.mean_gain == pytest.approx(np.mean([-0.1, -0.015, 0.1, 0.1 / 6]))


def test_the_baseline_against_itself_gains_nothing() -> None:
    summary = summarise(metrics({"a": [0.6, 0.7], "b": [0.5, 0.9]}, {"a": [0.7, 0.7], "b": [0.6, 0.6]})).topology("local-only")
    assert (summary.mean_gain, summary.share_hurt, summary.share_significantly_hurt) == (0.0, 0.0, 0.0)
    assert summary.mean_metric == pytest.approx(0.675) and summary.mean_metric_sd == pytest.approx(np.std([0.55, 0.8], ddof=1))


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ({"a": 10, "b": 20, "c": 30, "d": 40, "e": 50, "f": 60, "g": 70, "h": 80}, ("a", "b")),  # ceil(8/4) = 2
        ({"a": 40, "b": 5, "c": 5, "d": 100}, ("b", "c")),  # a tie at the cut is kept whole
        ({"a": 5, "b": 5, "c": 5, "d": 100}, ("a", "b", "c")),
        ({"a": 30, "b": 10, "c": 20}, ("b",)),  # fewer than four parties: the smallest
        ({"a": 7}, ("a",)),
        ({}, ()),
    ],
)
def test_the_smallest_quartile_by_training_size(sizes: dict[str, int], expected: tuple[str, ...]) -> None:
    assert smallest_quartile(sizes) == expected


def test_the_smallest_quartile_gain_is_the_mean_over_those_parties() -> None:
    sizes = {"big": 1000, "mid": 500, "small": 10, "tiny": 10, "huge": 5000}
    local = {p: [0.7, 0.7] for p in sizes}
    fed = {"big": [0.8, 0.8], "mid": [0.8, 0.8], "small": [0.9, 0.9], "tiny": [0.6, 0.6], "huge": [0.5, 0.5]}
    summary = summarise(metrics(local, fed, sizes=sizes)).topology("federated")
    assert summary.smallest_quartile == ("small", "tiny")
    assert summary.smallest_quartile_gain == pytest.approx(0.05)


def test_one_seed_leaves_every_interval_and_sd_undefined_not_zero() -> None:
    result = summarise(metrics({"a": [0.7], "b": [0.6]}, {"a": [0.5], "b": [0.9]}))
    fed = result.party("federated", "a")
    assert fed.gain_mean == pytest.approx(-0.2) and fed.n_pairs == 1
    assert math.isnan(fed.gain_low) and math.isnan(fed.gain_high) and math.isnan(fed.sd)
    assert not fed.significantly_hurt
    summary = result.topology("federated")
    assert summary.share_hurt == 0.5 and math.isnan(summary.share_significantly_hurt) and math.isnan(summary.mean_metric_sd)


def test_a_missing_value_drops_only_its_pair() -> None:
    local = {"a": [0.70, 0.70, NAN, 0.70], "b": [0.5, 0.5, 0.5, 0.5], "gone": [0.6, 0.6, 0.6, 0.6]}
    fed = {"a": [0.80, NAN, 0.90, 0.75], "b": [0.6, 0.6, 0.6, 0.6], "gone": [NAN] * 4}
    result = summarise(metrics(local, fed))
    a = result.party("federated", "a")
    assert a.n_pairs == 2 and a.n_seeds == 3 and a.gain_mean == pytest.approx(0.075)
    assert a.mean == pytest.approx(np.mean([0.8, 0.9, 0.75])) and (a.gain_low, a.gain_high) == pytest.approx(
        (0.05, 0.1)
    )  # [min, max] of 2 pairs
    gone = result.party("federated", "gone")
    assert gone.n_pairs == 0 and math.isnan(gone.gain_mean) and math.isnan(gone.mean)
    summary = result.topology("federated")
    assert summary.n_parties == 2 and summary.mean_gain == pytest.approx((0.075 + 0.1) / 2)
    assert summary.mean_metric == pytest.approx(np.mean([0.7, 0.6, 0.75, 0.675]))  # per seed over the parties present


@settings(max_examples=25, deadline=None)
@given(gains=st.lists(st.floats(-1, 1, allow_nan=False), min_size=2, max_size=6), data=st.data())
def test_where_the_missing_pairs_sit_does_not_change_the_interval(gains: list[float], data: st.DataObject) -> None:
    width = len(gains) + 3
    slots = sorted(data.draw(st.lists(st.integers(0, width - 1), min_size=len(gains), max_size=len(gains), unique=True)))
    row = np.full(width, NAN)
    row[slots] = gains
    packed = np.full(width, NAN)
    packed[: len(gains)] = gains
    both = bootstrap_intervals(np.vstack([row, packed]), resamples=300, seed=3)
    assert both[0] == pytest.approx(both[1])
    assert both[0, 0] <= np.mean(gains) + 1e-12 and both[0, 1] >= np.mean(gains) - 1e-12


def test_intervals_are_reproducible_for_a_seed() -> None:
    gains = np.random.default_rng(0).normal(size=(3, 8))
    assert np.array_equal(bootstrap_intervals(gains, seed=5), bootstrap_intervals(gains, seed=5))
    assert not np.array_equal(bootstrap_intervals(gains, seed=5), bootstrap_intervals(gains, seed=6))


def test_bad_input_is_refused_with_every_problem_at_once() -> None:
    with pytest.raises(ValueError, match="baseline") as caught:
        SeedMetrics(
            values={"federated": {"a": [0.5, 0.6], "b": [0.5]}, "central-pool": {"a": [0.5, 0.6]}},
            train_sizes={"a": 10, "b": -1},
            higher_is_better=True,
        )
    message = str(caught.value)
    assert "negative training size" in message and "same number of seeds" in message and "parties missing ['b']" in message
    with pytest.raises(ValueError, match="no seeds"):
        SeedMetrics(values={"local-only": {"a": []}}, train_sizes={"a": 1}, higher_is_better=True)
    with pytest.raises(ValueError, match="infinite"):
        SeedMetrics(values={"local-only": {"a": [math.inf]}}, train_sizes={"a": 1}, higher_is_better=True)
    with pytest.raises(ValueError, match="confidence"):
        summarise(metrics({"a": [0.5]}, {"a": [0.5]}), confidence=1.0)


def test_pooled_and_mean_figures_that_agree_need_no_sentence() -> None:
    assert explain_disagreement("federated", "auc", pooled=0.801, mean_over_parties=0.795, one_model=True) is None
    assert (
        explain_disagreement("federated", "rmse", pooled=101.0, mean_over_parties=100.5, one_model=True) is None
    )  # relative for RMSE
    assert explain_disagreement("federated", "auc", pooled=NAN, mean_over_parties=0.7, one_model=True) is None


def test_a_pooled_auc_over_local_models_is_explained_by_base_rates() -> None:
    sentence = explain_disagreement("local-only", "auc", pooled=0.86, mean_over_parties=0.71, one_model=False)
    assert sentence is not None and "base rate" in sentence and "above" in sentence and "0.860" in sentence
    assert sentence.count(".") == 3 and sentence.endswith(".")  # one sentence (two decimals and the stop)


def test_a_dominant_party_is_named() -> None:
    sentence = explain_disagreement(
        "federated",
        "rmse",
        pooled=8.0,
        mean_over_parties=12.0,
        one_model=True,
        test_sizes={"roads": 900, "parks": 50, "docks": 50},
    )
    assert sentence is not None and "roads holds 90% of the test rows" in sentence and "below" in sentence
    even = explain_disagreement(
        "federated", "r2", pooled=0.5, mean_over_parties=0.3, one_model=True, test_sizes={"a": 50, "b": 50}
    )
    assert even is not None and "holds" not in even and "averages" in even


def test_small_parties_are_flagged_with_their_reason() -> None:
    flagged = flag_small_parties({"tiny": 7, "fine": 500, "edge": MIN_TRAIN_ROWS})
    assert list(flagged) == ["tiny"] and "7 training rows" in flagged["tiny"]
    counts = {"fine": {"0": 480, "1": 20}, "rare": {"0": 495, "1": 5}, "flat": {"0": 500, "1": 0}}
    flagged = flag_small_parties({"fine": 500, "rare": 500, "flat": 500}, class_counts=counts)
    assert set(flagged) == {"rare", "flat"} and "5 rows of its rarer class" in flagged["rare"] and "one class" in flagged["flat"]
