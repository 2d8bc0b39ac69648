"""Statistics for a comparison repeated over seeds: paired gains, bootstrap intervals, share hurt.

Pure numpy, no I/O. `compare` collects one metric per topology, party and seed into
`SeedMetrics`; `summarise` turns it into frozen figures a sceptical reviewer can check.
A gain is always signed so that positive means "better than the baseline" (local-only),
whatever the metric's direction, and it is paired: same party, same seed. A pair with a
missing value (NaN) on either side is left out, and every figure says how many pairs it used.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

RELIABLE_SEEDS = 5  # fewer pairs: a bootstrap cannot reach past the observed gains, so intervals are too narrow
MIN_TRAIN_ROWS = 50  # below this a 20 % validation split has fewer than 10 rows: early stopping and model choice are noise
MIN_MINORITY_ROWS = 10  # "10 events per variable" (Peduzzi et al. 1996), for even a single predictor
BOUNDED_METRICS = frozenset({"auc", "r2", "accuracy"})  # on a unit scale: the tolerance is absolute, else relative
_CHUNK_ELEMENTS = 4_000_000  # cap on one bootstrap gather (parties x resamples x seeds), about 32 MB


@dataclass(frozen=True, kw_only=True)
class SeedMetrics:
    """One metric value per topology, party and seed (NaN where missing), with each party's training size.

    Every topology lists every party of `train_sizes` with the same number of seeds, so that
    a gain is always a pair of the same party and seed; a missing run is NaN, never absent.
    """

    values: Mapping[str, Mapping[str, Sequence[float]]]  # topology -> party -> value per seed
    train_sizes: Mapping[str, int]
    higher_is_better: bool  # AUC, R²: True; RMSE, MAE: False
    baseline: str = "local-only"

    def __post_init__(self) -> None:
        problems: list[str] = []
        parties = set(self.train_sizes)
        if self.baseline not in self.values:
            problems.append(f"baseline {self.baseline!r} is not among the topologies {sorted(self.values)}")
        if not parties:
            problems.append("no parties")
        problems += [f"party {p!r} has a negative training size {n}" for p, n in self.train_sizes.items() if n < 0]
        lengths: set[int] = set()
        for topology, by_party in self.values.items():
            if set(by_party) != parties:
                missing, extra = sorted(parties - set(by_party)), sorted(set(by_party) - parties)
                problems.append(f"topology {topology!r}: parties missing {missing}, unknown {extra} (use NaN for a missing run)")
            for party, seq in by_party.items():
                lengths.add(len(seq))
                if any(math.isinf(v) for v in seq):
                    problems.append(f"topology {topology!r}, party {party!r}: infinite value")
        if len(lengths) > 1:
            problems.append(f"every party needs the same number of seeds, found {sorted(lengths)}")
        if lengths == {0}:
            problems.append("no seeds")
        if problems:
            raise ValueError("SeedMetrics: " + "; ".join(problems))

    @property
    def parties(self) -> tuple[str, ...]:
        return tuple(self.train_sizes)

    @property
    def topologies(self) -> tuple[str, ...]:
        return tuple(self.values)

    @property
    def n_seeds(self) -> int:
        return len(next(iter(self.values[self.baseline].values())))

    def cube(self) -> NDArray[np.float64]:
        """Values as an array (topology, party, seed) in the order of `topologies` and `parties`."""
        return np.array([[list(self.values[t][p]) for p in self.parties] for t in self.topologies], dtype=np.float64)


@dataclass(frozen=True)
class PartyStats:
    """One party under one topology: its metric over seeds and its paired gain against the baseline."""

    topology: str
    party: str
    train_size: int
    n_seeds: int  # seeds with a value
    mean: float
    sd: float  # sample sd (ddof 1); NaN with fewer than 2 seeds
    gains: tuple[float, ...]  # per seed, positive = better than baseline; NaN where either side is missing
    n_pairs: int
    gain_mean: float
    gain_low: float  # bootstrap interval over seeds; NaN with fewer than 2 pairs (undefined, not zero width)
    gain_high: float

    @property
    def hurt(self) -> bool:
        return self.gain_mean < 0

    @property
    def significantly_hurt(self) -> bool:
        return self.gain_high < 0  # False when the interval is undefined

    @property
    def significantly_better(self) -> bool:
        return self.gain_low > 0


@dataclass(frozen=True)
class TopologySummary:
    """One topology over all parties; each party counts once (unweighted), whatever its size."""

    topology: str
    n_parties: int  # parties with at least one paired gain
    share_hurt: float  # mean gain < 0, among those parties
    share_significantly_hurt: float  # interval upper bound < 0; NaN when no party has an interval (one seed)
    mean_gain: float
    smallest_quartile: tuple[str, ...]
    smallest_quartile_gain: float
    mean_metric: float  # mean over seeds of the unweighted mean over parties
    mean_metric_sd: float  # sd over seeds of that per-seed mean; NaN with one seed


@dataclass(frozen=True)
class Comparison:
    """Everything `summarise` computed, with the settings that produced it."""

    parties: tuple[PartyStats, ...]
    topologies: tuple[TopologySummary, ...]
    baseline: str
    higher_is_better: bool
    n_seeds: int
    confidence: float
    resamples: int
    seed: int

    def party(self, topology: str, party: str) -> PartyStats:
        """One party's figures under one topology (KeyError if there are none)."""
        return {(s.topology, s.party): s for s in self.parties}[topology, party]

    def topology(self, name: str) -> TopologySummary:
        """One topology's summary (KeyError if there is none)."""
        return {s.topology: s for s in self.topologies}[name]


def _nanmean(a: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
    """Mean of the non-NaN values, NaN where there are none (without numpy's warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmean(a, axis=axis), dtype=np.float64)


def _nansd(a: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
    """Sample sd (ddof 1) of the non-NaN values, NaN where there are fewer than two."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanstd(a, axis=axis, ddof=1), dtype=np.float64)


def _t_within(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer df, exactly (Abramowitz & Stegun 26.7.3 and 26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2:
        term = total = math.cos(theta) if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= c2 * 2 * k / (2 * k + 1)
            total += term
        return 2 / math.pi * (theta + math.sin(theta) * total)
    term = total = 1.0
    for k in range(1, df // 2):
        term *= c2 * (2 * k - 1) / (2 * k)
        total += term
    return math.sin(theta) * total


def t_quantile(p: float, df: int) -> float:
    """The p-quantile (p > 0.5) of Student's t, by bisection on the exact distribution function."""
    target, high = 2 * p - 1, 1.0
    while _t_within(high, df) < target:
        high *= 2
    low = 0.0
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if _t_within(mid, df) < target else (low, mid)
    return (low + high) / 2


def expanded_levels(confidence: float, n: int) -> tuple[float, float]:
    """Percentile levels widened for n pairs, so that the interval's coverage is nominal even with few seeds.

    The plain percentile interval of a mean is too narrow by about sqrt((n-1)/n) * z / t_{n-1}
    (95 % gives about 90 % coverage with 10 seeds); Hesterberg's "expanded percentile" interval
    (2015, "What teachers should know about the bootstrap", The American Statistician) takes the levels
    Φ(±sqrt(n/(n-1)) t_{n-1}) instead, still reading them off the bootstrap distribution.
    """
    alpha = 1 - confidence
    tail = NormalDist().cdf(-math.sqrt(n / (n - 1)) * t_quantile(1 - alpha / 2, n - 1))
    return tail, 1 - tail


def bootstrap_intervals(
    gains: NDArray[np.float64], *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> NDArray[np.float64]:
    """Paired bootstrap interval of the mean gain for each row of `gains` (rows, seeds); NaN pairs are left out.

    One matrix of uniforms is drawn once; a row with n pairs resamples its pairs with the
    indices floor(U[:, :n] * n), so every row sees the same resampling, reproducibly. Rows with
    fewer than two pairs get NaN: one seed says nothing about how much the gain varies. Below
    `RELIABLE_SEEDS` pairs the interval cannot be wider than the observed gains, so it covers
    less than stated (simulated with normal gains at 95 %: about 50 % with 2, 75 % with 3,
    92 % with 5, 95 % with 10 pairs); the report should say so.
    """
    rows, n_seeds = gains.shape
    out = np.full((rows, 2), np.nan)
    uniforms = np.random.default_rng(seed).random((resamples, n_seeds))
    valid = ~np.isnan(gains)
    counts = valid.sum(axis=1)
    compact = np.take_along_axis(gains, np.argsort(~valid, axis=1, kind="stable"), axis=1)  # valid pairs first
    for n in sorted(set(counts.tolist()) - {0, 1}):
        members = np.flatnonzero(counts == n)
        index = (uniforms[:, :n] * n).astype(np.intp)
        levels = expanded_levels(confidence, n)
        step = max(1, _CHUNK_ELEMENTS // (resamples * n))
        for start in range(0, len(members), step):
            chunk = members[start : start + step]
            means = compact[chunk][:, index].mean(axis=2)  # (chunk, resamples)
            out[chunk] = np.quantile(means, levels, axis=1).T
    return out


def smallest_quartile(sizes: Mapping[str, int]) -> tuple[str, ...]:
    """Parties at or below the nearest-rank 25th percentile of training size (at least one party).

    The cut is the size of the ceil(P/4)-th smallest party, and every party of that size or
    smaller is in: ties are never split by name, so the group can exceed a quarter. With
    fewer than four parties it is the smallest party (and any party tied with it).
    """
    if not sizes:
        return ()
    ordered = sorted(sizes.values())
    cut = ordered[math.ceil(len(ordered) / 4) - 1]
    return tuple(p for p, n in sizes.items() if n <= cut)


def summarise(results: SeedMetrics, *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> Comparison:
    """Per-party and per-topology statistics of a comparison repeated over seeds."""
    if not 0 < confidence < 1 or resamples < 1:
        raise ValueError(f"confidence must be in (0, 1) and resamples at least 1, got {confidence} and {resamples}")
    cube = results.cube()
    sign = 1.0 if results.higher_is_better else -1.0
    base = cube[results.topologies.index(results.baseline)]
    gains = sign * (cube - base)  # NaN wherever either side is missing
    n_top, n_par, n_seeds = cube.shape
    intervals = bootstrap_intervals(gains.reshape(-1, n_seeds), confidence=confidence, resamples=resamples, seed=seed)
    intervals = intervals.reshape(n_top, n_par, 2)
    means, sds, gain_means = _nanmean(cube, 2), _nansd(cube, 2), _nanmean(gains, 2)
    seeds_with, pairs = (~np.isnan(cube)).sum(axis=2), (~np.isnan(gains)).sum(axis=2)
    quartile = smallest_quartile(results.train_sizes)
    in_quartile = np.array([p in quartile for p in results.parties])
    party_stats: list[PartyStats] = []
    summaries: list[TopologySummary] = []
    for t, topology in enumerate(results.topologies):
        for p, party in enumerate(results.parties):
            party_stats.append(
                PartyStats(
                    topology=topology,
                    party=party,
                    train_size=int(results.train_sizes[party]),
                    n_seeds=int(seeds_with[t, p]),
                    mean=float(means[t, p]),
                    sd=float(sds[t, p]),
                    gains=tuple(float(g) for g in gains[t, p]),
                    n_pairs=int(pairs[t, p]),
                    gain_mean=float(gain_means[t, p]),
                    gain_low=float(intervals[t, p, 0]),
                    gain_high=float(intervals[t, p, 1]),
                )
            )
        defined = ~np.isnan(gain_means[t])
        count = int(defined.sum())
        has_interval = ~np.isnan(intervals[t, :, 1])
        per_seed = _nanmean(cube[t], 0)  # unweighted mean over the parties present in each seed
        summaries.append(
            TopologySummary(
                topology=topology,
                n_parties=count,
                share_hurt=float((gain_means[t][defined] < 0).mean()) if count else math.nan,
                share_significantly_hurt=float((intervals[t, defined, 1] < 0).mean()) if has_interval.any() else math.nan,
                mean_gain=float(gain_means[t][defined].mean()) if count else math.nan,
                smallest_quartile=quartile,
                smallest_quartile_gain=float(_nanmean(gain_means[t][in_quartile], 0)),
                mean_metric=float(_nanmean(per_seed, 0)),
                mean_metric_sd=float(_nansd(per_seed, 0)),
            )
        )
    return Comparison(
        parties=tuple(party_stats),
        topologies=tuple(summaries),
        baseline=results.baseline,
        higher_is_better=results.higher_is_better,
        n_seeds=n_seeds,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
    )


def explain_disagreement(
    topology: str,
    metric: str,
    *,
    pooled: float,
    mean_over_parties: float,
    one_model: bool,
    test_sizes: Mapping[str, int] | None = None,
    tolerance: float = 0.01,
) -> str | None:
    """One sentence on why the metric on all test rows pooled differs from the unweighted mean over parties.

    None when they agree: within `tolerance` absolutely for a metric on a unit scale (AUC, R²,
    accuracy), relatively otherwise (RMSE, MAE carry the target's unit). `one_model` says
    whether every party was scored by the same model (central-pool, federated) or by its own.
    """
    if math.isnan(pooled) or math.isnan(mean_over_parties):
        return None
    key = metric.lower()
    scale = 1.0 if key in BOUNDED_METRICS else max(abs(pooled), abs(mean_over_parties))
    if abs(pooled - mean_over_parties) <= tolerance * scale:
        return None
    name = {"auc": "AUC", "r2": "R²", "rmse": "RMSE", "mae": "MAE"}.get(key, metric)
    reasons: list[str] = []
    if key == "auc" and not one_model:
        reasons.append("a pooled AUC over local models rewards each model's own base rate, not its ranking within a party")
    elif key == "auc":
        reasons.append("a pooled AUC also ranks rows of different parties against each other, so their base rates count")
    elif key == "r2":
        reasons.append("a pooled R² also counts the differences between parties' averages as variance to explain")
    total = sum(test_sizes.values()) if test_sizes else 0
    if test_sizes and total > 0:
        largest = max(test_sizes, key=lambda p: test_sizes[p])
        share = test_sizes[largest] / total
        if share > max(0.25, 2 / len(test_sizes)):
            reasons.append(f"{largest} holds {share:.0%} of the test rows and dominates the pooled figure")
    reasons.append("the pooled figure weights each party by its test rows while the mean counts every party once")
    side = "above" if pooled > mean_over_parties else "below"
    return (
        f"Under {topology}, the {name} on all test rows pooled ({pooled:.3f}) is {side} the unweighted mean over parties "
        f"({mean_over_parties:.3f}) because " + "; and ".join(reasons) + "."
    )


def flag_small_parties(
    sizes: Mapping[str, int],
    *,
    min_rows: int = MIN_TRAIN_ROWS,
    class_counts: Mapping[str, Mapping[str, int]] | None = None,
    min_minority: int = MIN_MINORITY_ROWS,
) -> dict[str, str]:
    """Parties whose training data are too few for a trustworthy local model, each with the reason in words.

    Fewer than `min_rows` training rows (50: a fifth held out for validation leaves under ten
    rows to stop on or choose with) or, when class counts are given, fewer than `min_minority`
    rows of the rarer class, or one class only. Their local-only figure, and so every gain
    against it, is mostly noise; the report should say so beside them.
    """
    flagged: dict[str, str] = {}
    for party, n in sizes.items():
        reasons = [f"{n} training rows (fewer than {min_rows})"] if n < min_rows else []
        counts = (class_counts or {}).get(party)
        if counts is not None:
            present = [c for c in counts.values() if c > 0]
            if len(present) < 2:
                reasons.append("only one class in its training rows")
            elif min(present) < min_minority:
                reasons.append(f"{min(present)} rows of its rarer class (fewer than {min_minority})")
        if reasons:
            flagged[party] = "; ".join(reasons)
    return flagged
