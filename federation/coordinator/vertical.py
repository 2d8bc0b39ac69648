"""The coordinator's side of a vertical run: it carries sealed letter pieces between the nodes and nothing else.

Every node checks the terms against its own policy at VerticalJoin, and
the coordinator collects every refusal at once. Then it repeats: wake each
node that has mail, hand it its pieces (in requests below the server's
message limit, the last one telling it to advance), and collect what it
sends, until every node says its part is over. It sees who writes to whom,
how much and when training stopped, which the terms make public anyway.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from federation.coordinator.client import Exchanged, NodeClient
from federation.coordinator.psi import each, raise_any
from federation.errors import InvalidRequest, ProtocolOrderError
from federation.task import RunContext
from federation.vertical.session import Advert, Piece, Terms

REQUEST_BYTES = 3 << 20  # of pieces per request, below the nodes' 4 MiB message limit
MAX_ROUNDS = 1_000_000


@dataclass
class VerticalOutcome:
    """What the coordinator saw: each node's outcome (the label party's test measures, if its policy allows)."""

    terms: Terms
    outcomes: dict[str, dict[str, object]]
    rounds: int
    bytes_by_node: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _batches(pieces: list[Piece]) -> list[list[Piece]]:
    out: list[list[Piece]] = [[]]
    size = 0
    for piece in pieces:
        if out[-1] and size + len(piece.data) > REQUEST_BYTES:
            out.append([])
            size = 0
        out[-1].append(piece)
        size += len(piece.data)
    return out


def run_vertical(clients: Mapping[str, NodeClient], terms: Terms, *, workers: int = 5) -> VerticalOutcome:
    """One vertical run over live nodes; raises PolicyDenied naming every refusal, or the first failure."""
    started = time.perf_counter()
    context = RunContext(terms.run_id, terms.purpose)
    parties = list(terms.parties)
    before = {name: sum(clients[name].traffic.bytes_by_rpc.values()) for name in parties}
    joined = each(parties, lambda name: clients[name].vertical_join(context, terms), workers)
    raise_any(joined, "VerticalJoin (no row was read)", run="vertical run")
    adverts = {name: a for name, a in joined.items() if isinstance(a, Advert)}
    replies = each(parties, lambda name: clients[name].vertical_admit(context, adverts), workers)
    raise_any(replies, "VerticalAdmit", run="vertical run")
    outcomes: dict[str, dict[str, object]] = {}
    mail: dict[str, list[Piece]] = {}
    rounds = 0

    def collect(name: str, reply: Exchanged) -> None:
        while True:
            for piece in reply.pieces:
                if piece.sender != name or piece.recipient not in clients or piece.recipient == name:
                    raise InvalidRequest(f"{name} sent a letter piece from {piece.sender[:64]!r} to {piece.recipient[:64]!r}")
                mail.setdefault(piece.recipient, []).append(piece)
            if reply.done:
                outcomes[name] = json.loads(reply.outcome) if reply.outcome else {}
            if not reply.more:
                return
            reply = clients[name].vertical_exchange(context, [], advance=False)

    def deliver(name: str, pieces: list[Piece]) -> Exchanged:
        batches = _batches(pieces)
        for batch in batches[:-1]:
            clients[name].vertical_exchange(context, batch, advance=False)
        return clients[name].vertical_exchange(context, batches[-1], advance=True)

    for name, reply in replies.items():
        assert isinstance(reply, Exchanged)
        collect(name, reply)
    while mail:
        rounds += 1
        if rounds > MAX_ROUNDS:
            raise ProtocolOrderError(f"the vertical run did not end within {MAX_ROUNDS} rounds")
        batch, mail = mail, {}
        answered = each(sorted(batch), lambda name: deliver(name, batch[name]), workers)  # noqa: B023 (each returns before the loop goes on)
        raise_any(answered, f"round {rounds}", run="vertical run")
        for name, reply in answered.items():
            assert isinstance(reply, Exchanged)
            collect(name, reply)
    waiting = sorted(set(parties) - set(outcomes))
    if waiting:
        raise ProtocolOrderError(f"the vertical run stalled: {waiting} wait for mail that nobody sent")
    after = {name: sum(clients[name].traffic.bytes_by_rpc.values()) for name in parties}
    return VerticalOutcome(
        terms, outcomes, rounds, {name: after[name] - before[name] for name in parties}, time.perf_counter() - started
    )
