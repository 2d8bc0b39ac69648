"""The policy decision: a pure function of (policy, request, today).

Every RPC of a node goes through `decide`; its reasons are sent to the caller
and kept in the node's log. A request matches a rule only when the caller,
purpose and model are all covered and the rule has not expired; the first
matching rule that grants the requested release level decides.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from federation.policy.model import Policy, Release, Rule, release_rank


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


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: tuple[str, ...]
    rule: str | None = None
    min_cohort: int = 1
    max_rounds: int = 0
    usable_columns: tuple[str, ...] = ()
    max_release: Release = "none"


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


def decide(policy: Policy, request: Request, *, today: dt.date) -> Decision:
    """Allow with the first matching rule's constraints, or deny with every reason."""
    if not any(_covers(rule.recipients, request.caller) for rule in policy.rule):
        return Decision(
            allowed=False,
            reasons=(f"{request.caller!r} is not a recipient named in {policy.party}'s policy (default {policy.default})",),
        )
    reasons: list[str] = []
    for rule in policy.rule:
        why_not = _mismatch(rule, request, today)
        if why_not is None:
            return Decision(
                allowed=True,
                reasons=(f"allowed by rule {rule.name!r} ({rule.release} to {request.caller})",),
                rule=rule.name,
                min_cohort=rule.min_cohort,
                max_rounds=rule.max_rounds or 0,
                usable_columns=tuple(c for c in request.columns if c not in rule.columns.deny),
                max_release=rule.release,
            )
        if _covers(rule.recipients, request.caller):
            reasons.append(why_not)  # rules for other recipients stay private
    reasons.append(f"default is {policy.default}")
    return Decision(allowed=False, reasons=tuple(reasons))
