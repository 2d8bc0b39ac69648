"""The policy decision: a pure function of (policy, request, budget history, today).

The caller passes `today` at every call, so a rule that expires while a node
runs stops granting at once.

Every RPC of a node goes through `decide`; its reasons are sent to the caller
and kept in the node's audit log. A request matches a rule only when the
caller, purpose and model are all covered and the rule has not expired; the
first matching rule that grants the requested release level decides. For a
rule with differential privacy, a model release also needs budget: the
decision names the noise the planned rounds require, or refuses with
`budget_exhausted` set, which the node reports as RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from federation.policy.model import Policy, Release, Rule, budget_key, release_rank
from federation.privacy.accounting import MechanismStep, epsilon_of, noise_for_budget


def sampling(records: int, batch_size: int, epochs: int) -> tuple[float, int]:
    """(sampling rate, steps) of one round of DP-SGD on `records` records."""
    rate = min(1.0, batch_size / max(records, 1))
    return rate, epochs * math.ceil(1 / rate)


MODEL_RELEASES: frozenset[Release] = frozenset({"masked-update", "update"})
CLIENT_SAMPLE_RATE = 1.0  # a node contributes to every round it joins


@dataclass(frozen=True)
class Request:
    """What a caller asks a node for, as the node sees it."""

    caller: str
    purpose: str
    release: Release
    model: str | None = None
    columns: tuple[str, ...] = ()
    rounds: int | None = None
    cohort_size: int | None = None
    dp_steps: int = 1  # rounds of releases this request would make under differential privacy
    records: int = 0  # the node's own training records (record-level DP), never from the caller
    batch_size: int = 1
    local_epochs: int = 1


@dataclass(frozen=True)
class Decision:
    """Allow or deny, the constraints imposed, and the reasons in words."""

    allowed: bool
    reasons: tuple[str, ...]
    rule: str | None = None
    min_cohort: int = 1
    max_rounds: int = 0
    usable_columns: tuple[str, ...] = ()
    max_release: Release = "none"
    clip: float | None = None  # L2 bound of an update under differential privacy
    noise_multiplier: float | None = None  # the least noise the planned rounds need
    epsilon_spent: float = 0.0
    epsilon_budget: float | None = None
    delta: float | None = None
    dp_level: str = ""  # "client" or "record" when the rule demands differential privacy
    sample_rate: float = CLIENT_SAMPLE_RATE
    steps_per_round: int = 1
    budget_exhausted: bool = False
    budget_key: str = ""  # the ledger key releases under this decision are charged to


History = Callable[[str], Sequence[MechanismStep]]  # budget key -> earlier releases to this recipient


def no_history(key: str) -> Sequence[MechanismStep]:
    return ()


def _covers(values: tuple[str, ...], value: str) -> bool:
    return "*" in values or value in values


def _mismatch(rule: Rule, request: Request, today: dt.date) -> str | None:
    """Why `rule` does not allow `request`, or None if it does."""
    if not _covers(rule.recipients, request.caller):
        return f"rule {rule.name!r} is not for recipient {request.caller!r}"
    if not _covers(rule.purposes, request.purpose):
        return f"rule {rule.name!r} does not cover purpose {request.purpose!r}"
    if rule.expires is not None and rule.expires < today:
        return f"rule {rule.name!r} expired on {rule.expires}"
    if release_rank(rule.release) < release_rank(request.release):
        return f"rule {rule.name!r} releases at most {rule.release!r}, the request needs {request.release!r}"
    if request.model is not None and rule.models is not None and request.model not in rule.models:
        return f"rule {rule.name!r} does not allow model {request.model!r} (allowed: {list(rule.models)})"
    denied = sorted(set(request.columns) & set(rule.columns.deny))
    if denied:
        return f"rule {rule.name!r} denies column(s) {denied}"
    if rule.columns.allow is not None:
        outside = sorted(set(request.columns) - set(rule.columns.allow))
        if outside:
            return f"rule {rule.name!r} does not allow column(s) {outside}"
    if request.rounds is not None and rule.max_rounds is not None and request.rounds > rule.max_rounds:
        return f"rule {rule.name!r} allows at most {rule.max_rounds} rounds, the request asks for {request.rounds}"
    if request.cohort_size is not None and request.cohort_size < rule.min_cohort:
        return f"rule {rule.name!r} needs a cohort of at least {rule.min_cohort}, the request has {request.cohort_size}"
    return None


def _allow(rule: Rule, request: Request, history_of: History) -> Decision:
    columns = tuple(c for c in request.columns if c not in rule.columns.deny)
    common = {
        "rule": rule.name,
        "min_cohort": rule.min_cohort,
        "max_rounds": rule.max_rounds or 0,
        "usable_columns": columns,
        "max_release": rule.release,
    }
    granted = f"allowed by rule {rule.name!r} ({rule.release} to {request.caller})"
    if rule.dp is None or request.release not in MODEL_RELEASES:
        return Decision(allowed=True, reasons=(granted,), **common)  # type: ignore[arg-type]
    dp = rule.dp
    key = budget_key(rule, request.purpose)
    history = history_of(key)
    spent = epsilon_of(history, delta=dp.delta)
    rate, per_round = CLIENT_SAMPLE_RATE, 1
    if dp.level == "record":  # DP-SGD on the node's own records: Poisson sampling, several steps a round
        rate, per_round = sampling(request.records, request.batch_size, request.local_epochs)
    budget = {
        "clip": dp.clip,
        "epsilon_spent": spent,
        "epsilon_budget": dp.epsilon,
        "delta": dp.delta,
        "dp_level": dp.level,
        "sample_rate": rate,
        "steps_per_round": per_round,
        "budget_key": key,
    }
    rounds = request.dp_steps
    sigma = noise_for_budget(history, epsilon=dp.epsilon, delta=dp.delta, sample_rate=rate, steps=rounds * per_round)
    if sigma is None:
        return Decision(
            allowed=False,
            reasons=(
                f"privacy budget spent: epsilon {spent:.3g} of {dp.epsilon:.3g} for {request.caller!r} under rule {rule.name!r}",
            ),
            budget_exhausted=True,
            **budget,  # type: ignore[arg-type]
            **common,  # type: ignore[arg-type]
        )
    reason = (
        f"{granted}, with {dp.level}-level differential privacy: clip {dp.clip:g}, noise multiplier >= {sigma:.3g} "
        f"for {rounds} round(s) "
        f"(epsilon {spent:.3g} of {dp.epsilon:.3g} spent)"
    )
    return Decision(allowed=True, reasons=(reason,), noise_multiplier=sigma, **budget, **common)  # type: ignore[arg-type]


def decide(policy: Policy, request: Request, *, today: dt.date, history: History = no_history) -> Decision:
    """Allow with the first matching rule's constraints, or deny with every reason.

    `history` gives the node's ledger of releases to this recipient under a
    budget key (see `policy.model.budget_key`); it only matters for rules
    with differential privacy.
    """
    if not any(_covers(rule.recipients, request.caller) for rule in policy.rule):
        return Decision(
            allowed=False,
            reasons=(f"{request.caller!r} is not a recipient named in {policy.party}'s policy (default {policy.default})",),
        )
    reasons: list[str] = []
    for rule in policy.rule:
        why_not = _mismatch(rule, request, today)
        if why_not is None:
            return _allow(rule, request, history)
        if _covers(rule.recipients, request.caller):
            reasons.append(why_not)  # rules for other recipients stay private
    reasons.append(f"default is {policy.default}")
    return Decision(allowed=False, reasons=tuple(reasons))
