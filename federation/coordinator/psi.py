"""The coordinator's side of a PSI run: it only routes sealed messages between the nodes.

Every node checks the terms against its own policy at PsiJoin, before it
hashes a single key; the coordinator collects every refusal, so a run whose
policies conflict stops with each clause named. Senders answer in parallel:
their work (the OPRF and the programmed table) is the expensive part. Two
parties run `psi.pair` instead: both raise their own points at once, then
each raises the other's, so the two nodes work in parallel throughout; the
coordinator holds the sealed chunks of one step while it relays them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from federation.coordinator.client import NodeClient
from federation.errors import FederationError, PolicyDenied
from federation.psi.pair import ANSWER, DELIVERY, OWN
from federation.psi.session import Advert, Terms
from federation.task import RunContext

T = TypeVar("T")


@dataclass
class PsiOutcome:
    """What the coordinator saw of a run: set sizes, the count if granted, and what the terms granted each party.

    Whether the intersection met every minimum is not among it: a node
    answers the terms' grant either way, and only its audit log says.
    """

    terms: Terms
    sizes: dict[str, int]
    count: int | None
    told: dict[str, str]
    bytes_by_node: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def each(names: list[str], work: Callable[[str], T], workers: int) -> dict[str, T | FederationError]:
    """`work` for every name, in parallel; a node's refusal is kept, not raised, so all are reported together."""

    def guarded(name: str) -> T | FederationError:
        try:
            return work(name)
        except FederationError as error:
            return error

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(names)))) as pool:
        return dict(zip(names, pool.map(guarded, names), strict=True))


def raise_any(results: Mapping[str, object], step: str, *, run: str = "PSI run") -> None:
    failed = {name: r for name, r in results.items() if isinstance(r, FederationError)}
    if not failed:
        return
    reasons = []
    for name, error in sorted(failed.items()):
        reasons += [f"{name}: {r}" for r in error.reasons] if isinstance(error, PolicyDenied) else [f"{name}: {error.public}"]
    raise PolicyDenied([f"{run} stopped at {step}", *reasons])


def run_psi(clients: Mapping[str, NodeClient], terms: Terms, *, purpose: str, workers: int = 4) -> PsiOutcome:
    """One PSI run over live nodes; raises PolicyDenied naming every refusal."""
    started = time.perf_counter()
    context = RunContext(terms.run_id, purpose)
    parties = list(terms.parties)
    before = {name: sum(clients[name].traffic.bytes_by_rpc.values()) for name in parties}
    joined = each(parties, lambda name: clients[name].psi_join(context, terms), workers)
    raise_any(joined, "PsiJoin (no key was hashed)")
    adverts: dict[str, Advert] = {name: a for name, a in joined.items() if isinstance(a, Advert)}
    admitted = each(parties, lambda name: clients[name].psi_admit(context, adverts), workers)
    raise_any(admitted, "PsiAdmit")
    if len(parties) == 2:
        count, told_words = _pair(clients, terms, context)
        return _outcome(clients, terms, adverts, count, told_words, before, started)
    queries = admitted[terms.receiver]
    assert isinstance(queries, dict)
    receiver = clients[terms.receiver]

    def answer(sender: str) -> None:
        receiver.psi_combine(context, sender, clients[sender].psi_respond(context, terms.receiver, queries[sender]))

    raise_any(each(sorted(queries), answer, workers), "PsiRespond")
    deliveries, count = receiver.psi_finish(context)
    told = each(sorted(deliveries), lambda name: clients[name].psi_deliver(context, terms.receiver, deliveries[name]), workers)
    raise_any(told, "PsiDeliver")
    told_words = {name: str(word) for name, word in told.items()}
    return _outcome(clients, terms, adverts, count, told_words, before, started)


def _pair(clients: Mapping[str, NodeClient], terms: Terms, context: RunContext) -> tuple[int | None, dict[str, str]]:
    """Two parties: each one's points in chunks to the other, the sender's answers back, then the delivery."""
    receiver = terms.receiver
    sender = terms.senders[0]
    other = {receiver: sender, sender: receiver}
    own = each([receiver, sender], lambda name: clients[name].psi_stream(context, OWN), 2)
    raise_any(own, "PsiStream (own points)")
    fed = each([receiver, sender], lambda name: clients[name].psi_feed(context, OWN, own[other[name]]), 2)  # type: ignore[arg-type]
    raise_any(fed, "PsiFeed (the other party's points)")
    answers = each([sender], lambda name: clients[name].psi_stream(context, ANSWER), 1)
    raise_any(answers, "PsiStream (answers)")
    raise_any(each([receiver], lambda name: clients[name].psi_feed(context, ANSWER, answers[sender]), 1), "PsiFeed (answers)")  # type: ignore[arg-type]
    _, count = clients[receiver].psi_finish(context)
    delivery = each([receiver], lambda name: clients[name].psi_stream(context, DELIVERY), 1)
    raise_any(delivery, "PsiStream (delivery)")
    told = each([sender], lambda name: clients[name].psi_feed(context, DELIVERY, delivery[receiver]), 1)  # type: ignore[arg-type]
    raise_any(told, "PsiFeed (delivery)")
    return count, {sender: str(told[sender])}


def _outcome(
    clients: Mapping[str, NodeClient],
    terms: Terms,
    adverts: Mapping[str, Advert],
    count: int | None,
    told: dict[str, str],
    before: Mapping[str, int],
    started: float,
) -> PsiOutcome:
    after = {name: sum(clients[name].traffic.bytes_by_rpc.values()) for name in terms.parties}
    return PsiOutcome(
        terms,
        sizes={name: a.set_size for name, a in adverts.items()},
        count=count,
        told={**told, terms.receiver: "membership"},
        bytes_by_node={name: after[name] - before[name] for name in terms.parties},
        seconds=time.perf_counter() - started,
    )
