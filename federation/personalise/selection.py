"""The conservative choice among candidates: keep the default unless another clearly wins.

The default is local-only: a party must end no worse off than alone. When its
rows are too few for a trustworthy local model (see `split.too_few_for_local`)
and the global model is offered, the default is the global model instead: a
local model fitted on a handful of events is not a baseline worth protecting,
and validation on those same few rows could almost never show that anything
beats it, so a local-only default would leave the smallest parties with their
worst model.

The rule, on a criterion's figure per candidate (lower is better: the mean
validation loss, or 1 - AUC; see `criteria`), judged on rows the candidates
never trained on:

* For each candidate c, the margin is the default's figure minus c's
  (positive: c is better) and its standard error comes from the paired
  per-row influences of the two figures (for a mean loss, the textbook
  sd(d) / sqrt(n) of the paired differences; for an AUC, DeLong's). Pairing
  removes the row-to-row variation that both models share.
* The threshold is a one-sided 95 % level, the level at which the report
  calls a gain significant: a candidate must beat the default by about 1.64
  standard errors, not by one. (At one SE, a level of 84 %, a district of
  the example city switched away from its default once in 30 choices of a
  5-seed run and lost 0.07 AUC on its test rows.)
  Several candidates compared on the same rows would let a lucky one
  through far more often, so the threshold is a simultaneous multiplier q:
  the 95 % quantile of max_c Z_c / SE_c, where Z is the margins' joint
  sampling error drawn by a Gaussian multiplier bootstrap over the rows
  (fixed seed; the max-t method of Westfall and Young, or Romano and Wolf,
  in the multiplier form of Chernozhukov, Chetverikov and Kato 2013). If no
  candidate is truly better than the default, the chance that any of them
  clears q * SE is then about 5 %, however many candidates were tried;
  unlike Bonferroni, q stays small when the candidates are correlated, as
  an alpha grid is.
* The node keeps the default unless some candidate's margin exceeds q * SE_c;
  of those that do, it takes the one with the best figure.

Only the `Choice` (a candidate's name and hyperparameters, row counts, mean
figures, margins, SEs and a sentence) may leave the node: no row-level values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from federation.errors import InvalidRequest
from federation.personalise.criteria import Judged, figure_name
from federation.personalise.methods import Candidate, Scalar
from federation.personalise.split import Split

LEVEL = 0.95  # one-sided, simultaneous over the candidates compared
_CHUNK = 256


@dataclass(frozen=True)
class Comparison:
    """One candidate against the default on the validation rows."""

    label: str
    figure: float  # the criterion's figure on the validation rows: lower is better
    margin: float  # the default's figure minus this candidate's: positive means better
    se: float  # standard error of the margin (paired)
    needed: float  # the margin it had to exceed: multiplier * se


@dataclass(frozen=True)
class ValidationSummary:
    """What the choice was made on, in aggregates only."""

    scheme: str
    rows: int
    training_rows: int
    few_local: str  # why the local data are too few for a trustworthy local model ("" if they are not)
    default: str  # the candidate kept unless another clearly wins
    criterion: str  # "loss" (the task's mean loss) or "auc" (figure: 1 - AUC)
    multiplier: float
    default_figure: float | None
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


def multiplier(influence: np.ndarray, se: np.ndarray, *, resamples: int, seed: int) -> float:
    """The simultaneous SE multiplier q >= 1 for margins with per-row `influence` (rows x candidates)."""
    n, k = influence.shape
    if k == 0 or n < 2:
        return 1.0
    rng = np.random.default_rng([seed, 0xB0075])
    scale = np.where(se > 0, se, np.inf)  # a candidate with zero spread cannot be lucky
    maxima = []
    for start in range(0, resamples, _CHUNK):
        weights = rng.standard_normal((min(_CHUNK, resamples - start), n))
        maxima.append(((weights @ influence) / scale).max(axis=1))
    return max(1.0, float(np.quantile(np.concatenate(maxima), LEVEL)))


def _name(candidate: Candidate) -> str:
    return {"local": "local-only", "global": "the global model"}.get(candidate.method, candidate.label)


def _default_words(default: Candidate, few_local: str) -> str:
    if default.method == "global":
        return f"the global model is the default because {few_local}; "
    return ""


def choose(
    values: Mapping[Candidate, np.ndarray],
    judge: Callable[[np.ndarray], Judged],
    *,
    criterion: str,
    default: Candidate,
    split: Split,
    training_rows: int,
    few_local: str,
    resamples: int,
    seed: int,
) -> Choice:
    """Apply the rule above; `values` are per-row validation outputs, `judge` turns their columns into figures.

    `default` must be among them. A candidate with a non-finite value diverged
    and is left out (named in the summary); a diverged default is refused.
    """
    if default not in values:
        raise InvalidRequest(f"the default candidate {default.label!r} must be validated")
    if not np.all(np.isfinite(values[default])):
        if default.method == "local":
            raise InvalidRequest("local training diverged (non-finite validation loss); lower the learning rate")
        raise InvalidRequest(f"the default candidate {default.label!r} has non-finite validation outputs")
    others = [c for c in values if c != default]
    diverged = tuple(c.label for c in others if not np.all(np.isfinite(values[c])))
    others = [c for c in others if c.label not in diverged]
    judged = judge(np.stack([np.asarray(values[c], dtype=np.float64) for c in (default, *others)], axis=1))
    n = judged.influence.shape[0]
    margin = judged.figure[0] - judged.figure[1:]
    influence = judged.influence[:, :1] - judged.influence[:, 1:]
    se = np.sqrt((influence**2).sum(axis=0))
    q = multiplier(influence, se, resamples=resamples, seed=seed)
    comparisons = tuple(
        Comparison(c.label, float(f), float(m), float(e), float(q * e))
        for c, f, m, e in zip(others, judged.figure[1:], margin, se, strict=True)
    )
    summary = ValidationSummary(
        scheme=split.description,
        rows=n,
        training_rows=training_rows,
        few_local=few_local,
        default=default.label,
        criterion=criterion,
        multiplier=q,
        default_figure=float(judged.figure[0]),
        candidates=comparisons,
        diverged=diverged,
    )
    winners = [(c, x) for c, x in zip(others, comparisons, strict=True) if x.margin > 0 and x.margin > x.needed]
    why = _default_words(default, few_local)
    few = f"; {few_local}" if few_local and default.method != "global" else ""
    on = f"on {split.description}"
    kept, figure = _name(default), figure_name(criterion)
    better = "above" if criterion == "auc" else "below"
    if not winners:
        if not comparisons:
            return Choice(default, summary, f"kept {kept}: {why}no other candidate to compare {on}{few}")
        best = max(comparisons, key=lambda x: x.margin)
        return Choice(
            default,
            summary,
            f"kept {kept}: {why}no candidate beat it by the margin a one-sided 95 % test needs {on}; the closest, "
            f"{best.label}, was {best.margin:+.4f} in {figure} against {best.needed:.4f} needed "
            f"({q:.2f} x SE {best.se:.4f}, {len(comparisons)} candidates compared){few}",
        )
    candidate, won = min(winners, key=lambda w: w[1].figure)
    return Choice(
        candidate,
        summary,
        f"chose {won.label}: {why}its {figure} is {won.margin:.4f} {better} {kept}'s {on}, more than the "
        f"{won.needed:.4f} needed ({q:.2f} x SE {won.se:.4f}, widened for {len(comparisons)} candidates compared){few}",
    )


def keep_default(default: Candidate, *, criterion: str, split: Split, training_rows: int, few_local: str) -> Choice:
    """The choice when the validation rows are too few to choose on: the default, and saying so."""
    summary = ValidationSummary(
        scheme=split.description,
        rows=split.rows,
        training_rows=training_rows,
        few_local=few_local,
        default=default.label,
        criterion=criterion,
        multiplier=1.0,
        default_figure=None,
        candidates=(),
    )
    why = _default_words(default, few_local)
    few = f"; {few_local}" if few_local and default.method != "global" else ""
    return Choice(default, summary, f"kept {_name(default)} without comparing: {why}{split.problem}{few}")
