"""Plain-word explanations for analysts: what a policy does with an experiment, what changed between two.

Pure functions over policies and requests; the CLI prints what they return.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from federation.policy.evaluate import Decision, Request, decide
from federation.policy.model import Policy, Release, Rule, release_rank

# What each topology asks a node to release.
TOPOLOGY_RELEASES: dict[str, Release] = {
    "federated (secure aggregation)": "masked-update",
    "federated (plain updates)": "update",
    "central-pool (raw export)": "raw",
    "local-only (metrics only)": "stats",
}


@dataclass(frozen=True)
class Explanation:
    topology: str
    decision: Decision


def explain(policy: Policy, request: Request, *, today: dt.date) -> list[Explanation]:
    """The decision for the experiment's request under each topology's release level."""
    result = []
    for topology, release in TOPOLOGY_RELEASES.items():
        asked = Request(**{**request.__dict__, "release": release, "dp_steps": request.rounds or 1})
        result.append(Explanation(topology, decide(policy, asked, today=today)))
    return result


def _rule_changes(old: Rule, new: Rule) -> list[str]:
    changes = []
    if old.release != new.release:
        direction = "more" if release_rank(new.release) > release_rank(old.release) else "less"
        changes.append(f"release {old.release} -> {new.release} ({direction} may leave)")
    for label, before, after in (("recipients", old.recipients, new.recipients), ("purposes", old.purposes, new.purposes)):
        added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
        if added:
            changes.append(f"{label} added: {', '.join(added)}")
        if removed:
            changes.append(f"{label} removed: {', '.join(removed)}")
    if old.min_cohort != new.min_cohort:
        changes.append(
            f"minimum cohort {old.min_cohort} -> {new.min_cohort} ({'stricter' if new.min_cohort > old.min_cohort else 'looser'})"
        )
    if old.columns != new.columns:
        changes.append(f"columns {old.columns.model_dump()} -> {new.columns.model_dump()}")
    if old.dp != new.dp:
        if old.dp is None and new.dp is not None:
            changes.append(
                f"differential privacy added: epsilon {new.dp.epsilon:g}, delta {new.dp.delta:g}, clip {new.dp.clip:g}"
            )
        elif new.dp is None and old.dp is not None:
            changes.append("differential privacy removed")
        elif old.dp is not None and new.dp is not None:
            changes.append(
                f"privacy budget epsilon {old.dp.epsilon:g} -> {new.dp.epsilon:g}, delta {old.dp.delta:g} -> {new.dp.delta:g}, "
                f"clip {old.dp.clip:g} -> {new.dp.clip:g}"
            )
    if old.models != new.models:
        changes.append(f"models {list(old.models) if old.models else 'any'} -> {list(new.models) if new.models else 'any'}")
    if old.max_rounds != new.max_rounds:
        changes.append(f"maximum rounds {old.max_rounds or 'unlimited'} -> {new.max_rounds or 'unlimited'}")
    if old.expires != new.expires:
        changes.append(f"expires {old.expires or 'never'} -> {new.expires or 'never'}")
    return changes


def diff(old: Policy, new: Policy) -> list[str]:
    """What changes from `old` to `new`, in plain words, one line per change."""
    lines = []
    if old.party != new.party:
        lines.append(f"party {old.party} -> {new.party}")
    before = {r.name: r for r in old.rule}
    after = {r.name: r for r in new.rule}
    for name in [n for n in before if n not in after]:
        r = before[name]
        lines.append(f"rule {name!r} removed: no longer releases {r.release} to {', '.join(r.recipients)}")
    for name in [n for n in after if n not in before]:
        r = after[name]
        dp = f" under differential privacy (epsilon {r.dp.epsilon:g})" if r.dp else ""
        lines.append(f"rule {name!r} added: releases {r.release} to {', '.join(r.recipients)} for {', '.join(r.purposes)}{dp}")
    for name in sorted(before.keys() & after.keys()):
        lines.extend(f"rule {name!r}: {change}" for change in _rule_changes(before[name], after[name]))
    order_before = [n for n in before if n in after]
    order_after = [n for n in after if n in before]
    if order_before != order_after:
        lines.append("rule order changed (the first matching rule decides)")
    return lines or ["no change"]
