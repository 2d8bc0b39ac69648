"""Before any cryptography runs: do the parties' policies allow the disclosures a PSI run asks for?

A run asks that some parties learn which of their firms are in the final
intersection (membership: typically the label party) and that others learn
only its size. Whatever a party learns of the intersection it learns about
every other party's set too, so each party's PSI clause must consent to each
other party's disclosure. A run whose policies conflict is refused before a
single key is hashed, with every conflict named (party, rule and clause).

The minimum size is checked on the count, before any membership is
revealed: below the largest minimum of any party, nobody learns which firms
were shared, and the refusal names the party whose minimum was not met (not
the count).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from federation.policy.model import Policy, PsiClause, Rule

COORDINATOR = "coordinator"  # the one observer a disclosure may name besides the parties: count only, by name only


@dataclass(frozen=True)
class Granted:
    """One party's answer to a PSI proposal: the rule that allowed it and its PSI clause (None: no clause)."""

    rule: str
    clause: PsiClause | None


@dataclass(frozen=True)
class Disclosure:
    """What a PSI run asks to reveal, and to whom."""

    membership: tuple[str, ...]  # parties that learn which of their own firms are shared
    count: tuple[str, ...]  # parties that learn only how many are


def clause_conflicts(party: str, answer: Granted, wanted: Disclosure, parties: Sequence[str]) -> list[str]:
    """What one party's clause refuses of the requested disclosures: each node checks its own before joining."""
    if answer.clause is None:
        return [f"{party}: rule {answer.rule!r} has no psi clause, so it allows no private set intersection"]
    problems = []
    missing = sorted(set(answer.clause.require_parties) - set(parties))
    if missing:
        problems.append(f"{party}: rule {answer.rule!r} runs a PSI only with {missing} among the parties (psi.require_parties)")
    for other in wanted.membership:
        if other != party and not answer.clause.may_learn_membership(other):
            problems.append(
                f"{party}: rule {answer.rule!r} does not let {other} learn which firms are shared (psi.membership_to)"
            )
    for other in wanted.count:
        if other == COORDINATOR and not answer.clause.may_learn_count(other):
            problems.append(
                f"{party}: rule {answer.rule!r} does not name the coordinator in psi.count_to, so it may not learn the count"
            )
        elif other not in (party, COORDINATOR) and not answer.clause.may_learn_count(other):
            problems.append(f"{party}: rule {answer.rule!r} does not let {other} learn how many firms are shared (psi.count_to)")
    return problems


def conflicts(parties: Sequence[str], granted: Mapping[str, Granted], wanted: Disclosure) -> list[str]:
    """Every policy clause the requested disclosures break (empty: the run may start)."""
    problems = []
    unknown = sorted((set(wanted.membership) | set(wanted.count)) - set(parties) - {COORDINATOR})
    if unknown:
        problems.append(f"the run asks to disclose to {unknown}, which are not parties of it")
    if COORDINATOR in wanted.membership:
        problems.append("the run asks that the coordinator learn which firms are shared, which no policy can allow")
    for party in parties:
        answer = granted.get(party)
        if answer is None:
            problems.append(f"{party}: no answer granting a private set intersection")
        else:
            problems.extend(clause_conflicts(party, answer, wanted, parties))
    return problems


def live_rule(policy: Policy, *, caller: str, purpose: str, today: dt.date, clause: str) -> Rule | list[str]:
    """The first live rule for this caller and purpose that has `clause` ("psi", "vertical"), or why there is none."""
    reasons = []
    for rule in policy.rule:
        if not ("*" in rule.recipients or caller in rule.recipients):
            continue
        if not ("*" in rule.purposes or purpose in rule.purposes):
            reasons.append(f"rule {rule.name!r} does not cover purpose {purpose!r}")
        elif rule.expires is not None and rule.expires < today:
            reasons.append(f"rule {rule.name!r} expired on {rule.expires}")
        elif getattr(rule, clause) is None:
            reasons.append(f"rule {rule.name!r} has no {clause} clause")
        else:
            return rule
    if not reasons:
        reasons.append(f"{caller!r} is not a recipient named in {policy.party}'s policy")
    return [*reasons, f"default is {policy.default}"]


def grant(policy: Policy, *, caller: str, purpose: str, today: dt.date) -> Granted | list[str]:
    """The first live rule for this caller and purpose with a psi clause, or why there is none."""
    rule = live_rule(policy, caller=caller, purpose=purpose, today=today, clause="psi")
    return rule if isinstance(rule, list) else Granted(rule.name, rule.psi)


def size_refusal(count: int, granted: Mapping[str, Granted]) -> str | None:
    """Why an intersection of `count` firms may not be revealed (None if every party's minimum is met)."""
    unmet = sorted(
        (answer.clause.min_intersection, party)
        for party, answer in granted.items()
        if answer.clause is not None and count < answer.clause.min_intersection
    )
    if not unmet:
        return None
    names = ", ".join(f"{party} (rule {granted[party].rule!r})" for _, party in unmet)
    return f"the intersection is below the minimum size of {names}: nobody learns which firms were shared"
