"""The conservative choice among candidates: keep local-only unless another clearly wins.

The rule, on per-row validation losses l_i(c) (rows the candidates never trained on):

* For each candidate c, the paired differences d_i = l_i(local) - l_i(c); the
  margin is their mean (positive: c has the lower loss) and its standard error
  is the analytic sd(d) / sqrt(n). Analytic because the margin is a plain mean
  of paired differences, for which sd/sqrt(n) is the textbook estimate; it is
  exact, deterministic and costs nothing, and pairing removes the row-to-row
  variation that both models share.
* One SE is the threshold for a single comparison (a one-sided level of
  Phi(1), about 84 %). Several candidates compared on the same rows would let a
  lucky one through far more often, so the SE is widened by a simultaneous
  multiplier q >= 1: the Phi(1) quantile, over a bootstrap of the validation
  rows (fixed seed), of max_c (d*_c - d_c) / SE_c (the max-t method of
  Westfall and Young, or Romano and Wolf). If no candidate is truly better
  than local, the chance that any of them clears q * SE is then about 16 %,
  however many candidates were tried; the bootstrap (not Bonferroni) keeps q
  small when the candidates are correlated, as an alpha grid is.
* The node keeps `local` unless some candidate's margin exceeds q * SE_c; of
  those that do, it takes the one with the lowest mean validation loss.

Only the `Choice` (a candidate's name and hyperparameters, row counts, mean
losses, margins, SEs and a sentence) may leave the node: no row-level values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from federation.errors import InvalidRequest
from federation.personalise.methods import Candidate, Scalar
from federation.personalise.split import Split

LEVEL = 0.5 * (1.0 + math.erf(1.0 / math.sqrt(2.0)))  # Phi(1): the level of a one-SE rule
_CHUNK = 256


@dataclass(frozen=True)
class Comparison:
    """One candidate against local-only on the validation rows."""

    label: str
    mean_loss: float
    margin: float  # local's mean loss minus this candidate's: positive means lower loss than local
    se: float  # standard error of the margin (paired)
    needed: float  # the margin it had to exceed: multiplier * se


@dataclass(frozen=True)
class ValidationSummary:
    """What the choice was made on, in aggregates only."""

    scheme: str
    rows: int
    training_rows: int
    few_local_rows: bool
    multiplier: float
    local_mean_loss: float | None
    candidates: tuple[Comparison, ...]
    diverged: tuple[str, ...] = ()


@dataclass(frozen=True)
class Choice:
    """The chosen candidate, the summary it was chosen on and why, in plain words."""

    candidate: Candidate
    summary: ValidationSummary
    reason: str

    @property
    def method(self) -> str:
        return self.candidate.method

    @property
    def params(self) -> Mapping[str, Scalar]:
        return dict(self.candidate.params)


def multiplier(differences: np.ndarray, se: np.ndarray, *, resamples: int, seed: int) -> float:
    """The simultaneous SE multiplier q >= 1 for the columns of `differences` (rows x candidates)."""
    n, k = differences.shape
    if k == 0 or n < 2:
        return 1.0
    rng = np.random.default_rng([seed, 0xB0075])
    mean = differences.mean(axis=0)
    scale = np.where(se > 0, se, np.inf)  # a candidate with zero spread cannot be lucky
    maxima = []
    for start in range(0, resamples, _CHUNK):
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=min(_CHUNK, resamples - start))
        maxima.append((((counts @ differences) / n - mean) / scale).max(axis=1))
    return max(1.0, float(np.quantile(np.concatenate(maxima), LEVEL)))


def choose(
    losses: Mapping[Candidate, np.ndarray],
    *,
    local: Candidate,
    split: Split,
    training_rows: int,
    few_rows: int,
    resamples: int,
    seed: int,
) -> Choice:
    """Apply the rule above to per-row validation losses (`local` must be among them)."""
    if local not in losses:
        raise InvalidRequest("the local-only candidate must be validated")
    base = np.asarray(losses[local], dtype=np.float64)
    if not np.all(np.isfinite(base)):
        raise InvalidRequest("local training diverged (non-finite validation loss); lower the learning rate")
    others = [c for c in losses if c != local]
    diverged = tuple(c.label for c in others if not np.all(np.isfinite(losses[c])))
    others = [c for c in others if c.label not in diverged]
    n = len(base)
    differences = (
        np.stack([base - np.asarray(losses[c], dtype=np.float64) for c in others], axis=1) if others else np.zeros((n, 0))
    )
    margin = differences.mean(axis=0)
    se = differences.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(len(others))
    q = multiplier(differences, se, resamples=resamples, seed=seed)
    comparisons = tuple(
        Comparison(c.label, float(np.mean(losses[c])), float(m), float(s), float(q * s))
        for c, m, s in zip(others, margin, se, strict=True)
    )
    summary = ValidationSummary(
        scheme=split.description,
        rows=n,
        training_rows=training_rows,
        few_local_rows=training_rows < few_rows,
        multiplier=q,
        local_mean_loss=float(base.mean()),
        candidates=comparisons,
        diverged=diverged,
    )
    winners = [(c, x) for c, x in zip(others, comparisons, strict=True) if x.margin > 0 and x.margin > x.needed]
    few = f"; only {training_rows} training rows, too few for a trustworthy local model" if summary.few_local_rows else ""
    on = f"on {split.description}"
    if not winners:
        if not comparisons:
            return Choice(local, summary, f"kept local-only: no other candidate to compare {on}{few}")
        best = max(comparisons, key=lambda x: x.margin)
        return Choice(
            local,
            summary,
            f"kept local-only: no candidate beat it by more than its (widened) standard error {on}; the closest, "
            f"{best.label}, was {best.margin:+.4f} in mean loss against {best.needed:.4f} needed "
            f"({q:.2f} x SE {best.se:.4f}, {len(comparisons)} candidates compared){few}",
        )
    candidate, won = min(winners, key=lambda w: w[1].mean_loss)
    return Choice(
        candidate,
        summary,
        f"chose {won.label}: its mean validation loss is {won.margin:.4f} below local-only's {on}, more than the "
        f"{won.needed:.4f} needed ({q:.2f} x SE {won.se:.4f}, widened for {len(comparisons)} candidates compared){few}",
    )


def keep_local(local: Candidate, *, split: Split, training_rows: int, few_rows: int) -> Choice:
    """The choice when the validation rows are too few to choose on: local-only, and saying so."""
    summary = ValidationSummary(
        scheme=split.description,
        rows=split.rows,
        training_rows=training_rows,
        few_local_rows=training_rows < few_rows,
        multiplier=1.0,
        local_mean_loss=None,
        candidates=(),
    )
    few = f"; the local model rests on only {training_rows} training rows" if summary.few_local_rows else ""
    return Choice(local, summary, f"kept local-only without comparing: {split.problem}{few}")
