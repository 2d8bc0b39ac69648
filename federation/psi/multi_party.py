"""Multi-party PSI: the receiver learns the firms *every* party holds, and nothing about partial overlaps.

The construction follows Kolesnikov, Matania, Pinkas, Rosulek and Trieu
(2017, "Practical multi-party private set intersection from symmetric-key
techniques"), in its star form with the receiver at the centre:

1. every party splits zero over the run's keys: z_i(x) = sum over j != i of
   +-PRF(k_ij, H(x)), with k_ij from the pairwise X25519 key of the signed
   adverts, so that sum_i z_i(x) = 0 for any x;
2. for each sender i, the receiver obtains t_i(x) = F_ki(x) for its own keys
   through the oblivious PRF of `oprf` (sender i learns nothing of them);
3. sender i sends a table (`opprf.Table`) programmed so that at t_i(y) it
   gives z_i(y), for its own keys y only;
4. the receiver keeps x exactly when z_R(x) + sum_i Table_i(t_i(x)) = 0.

For a key all parties hold the sum is 0 by construction. If any sender
lacks x, its table gives a value independent of everything else, so the sum
is 0 with probability 2^-127: exact in practice, with no false negatives.

Threat model (semi-honest parties; the coordinator relays only):

- the coordinator, alone or with any set of senders, learns the set sizes
  (in the signed adverts) and, if every policy names it, the count; every
  message between two parties is sealed with their pairwise AES-GCM key,
  so it relays ciphertext. It cannot invent or impersonate a party (adverts
  verify against accepted certificates), substitute keys, tell parties
  different terms (the signatures bind one digest), or replay a message
  into another run (the digest is in every key hash and every binding);
- the receiver alone learns the full intersection and nothing about keys
  held by only some senders: their table values hide z_i(x), which
  contains PRF(k_ij, x) for a pair of senders it does not know;
- a sender learns the receiver's set size and what the receiver delivers
  under the policies (the intersection, its size, or nothing);
- not covered: a receiver colluding with a sender learns the intersection
  of its set with the others' (the sender's pairwise keys cancel the
  hiding terms); a party that deviates from the protocol (wrong tables,
  chosen keys) can make the result wrong or probe membership of keys it
  chose, bounded by the policies' minimum size. The two-party protocol of
  `two_party` is the one to use when there are only two parties.

Why this and not `openmined-psi`: that library is a two-party protocol (a
server and a client), so with five parties it would reveal every pairwise
intersection to the receiver, which the policies forbid; and it adds a
native dependency. Everything here is `cryptography` (P-256, X25519,
AES-GCM, HKDF) and Python integers.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from federation.errors import InvalidRequest, ProtocolOrderError
from federation.psi.blind import POINT, pack, unpack
from federation.psi.opprf import PRIME, Table, to_field
from federation.psi.oprf import OprfClient, OprfKey, hash_to_curve
from federation.psi.plan import COORDINATOR, Granted, size_refusal
from federation.psi.session import Party

QUERY, RESPONSE, DELIVERY = "query", "response", "delivery"
REFUSED, NOTHING, COUNT, MEMBERSHIP = 0, 1, 2, 3  # what a delivery carries


@dataclass(frozen=True)
class Delivery:
    """What one party is told at the end of a run."""

    status: int  # REFUSED (below someone's minimum), NOTHING, COUNT or MEMBERSHIP
    count: int | None
    shared: tuple[int, ...] | None  # indices of the party's own keys, MEMBERSHIP only

    def pack(self, digests: list[bytes], width: int) -> bytes:
        """Padded to `width` whatever it carries, so its length tells the coordinator neither count nor status."""
        count = (-1 if self.count is None else self.count).to_bytes(8, "big", signed=True)
        body = bytes([self.status]) + count + (pack(digests) if self.status == MEMBERSHIP else b"")
        return body + bytes(width - len(body))


def delivery_header(blob: bytes, party: Party) -> Delivery:
    """A delivery's status and count, checked against what the terms grant `party`; the keys are left to the caller."""
    if not blob or blob[0] not in (REFUSED, NOTHING, COUNT, MEMBERSHIP):
        raise InvalidRequest("a PSI delivery is malformed")
    status, count = blob[0], int.from_bytes(blob[1:9], "big", signed=True)
    expected = party.terms.learns(party.name)
    if status != REFUSED and {NOTHING: "nothing", COUNT: "count", MEMBERSHIP: "membership"}[status] != expected:
        raise InvalidRequest(f"the receiver's delivery is not what the terms grant {party.name} ({expected})")
    if status in (REFUSED, NOTHING):
        return Delivery(status, None, None)
    if not party.minimum <= count <= min(party.sizes.values()):
        raise InvalidRequest("the receiver delivered a count below a party's minimum or above a set size")
    return Delivery(status, count, None)


def delivery_width(sizes: Mapping[str, int]) -> int:
    """Room for the largest possible intersection: the smallest advertised set."""
    return 9 + POINT * min(sizes.values())


@dataclass(frozen=True)
class Outcome:
    """The receiver's result: its own shared keys, the sealed deliveries, and what the coordinator may see."""

    delivery: Delivery
    refusal: str | None
    sealed: dict[str, bytes]  # party -> sealed Delivery, to be relayed
    coordinator_count: int | None


class Receiver(Party):
    """The party that learns which of its keys every other party holds; it tells the others what they may learn."""

    def queries(self) -> dict[str, bytes]:
        """One sealed OPRF query per sender, each with its own blinding."""
        if not self.sizes:
            raise ProtocolOrderError("the run's adverts have not been admitted yet")
        points = [hash_to_curve(d) for d in self.digests]
        self._clients = {sender: OprfClient(points) for sender in self.terms.senders}
        return {s: self.seal_for(s, QUERY, pack(c.blinded)) for s, c in self._clients.items()}

    def finish(self, responses: Mapping[str, bytes], granted: Mapping[str, Granted]) -> Outcome:
        """Combine every sender's response; `granted` holds the run's PSI clauses for the size check."""
        clients = getattr(self, "_clients", None)
        if clients is None:
            raise ProtocolOrderError("the queries have not been sent")
        if sorted(responses) != self.terms.senders:
            raise InvalidRequest(f"responses came from {sorted(responses)}, not the senders {self.terms.senders}")
        total = self.zero_shares()
        n = len(self.digests)
        for sender, response in responses.items():
            blob = self.open_from(sender, RESPONSE, response)
            evaluated = unpack(blob[: n * POINT], what=f"{sender}'s oblivious PRF answers")
            table = Table.unpack(blob[n * POINT :], expected_keys=self.sizes[sender])
            for i, t in enumerate(clients.pop(sender).finish(evaluated)):
                total[i] += table(to_field(t))
        shared = [i for i, s in enumerate(total) if s % PRIME == 0]
        del self._clients
        refusal = size_refusal(len(shared), granted)
        if refusal is None and len(shared) < self.minimum:
            refusal = "the intersection is below a party's advertised minimum size: nobody learns which firms were shared"
        sealed, width = {}, delivery_width(self.sizes)
        for party in self.terms.senders:
            delivery = self._delivery_for(party, shared, refusal)
            digests = [self.digests[i] for i in shared] if delivery.status == MEMBERSHIP else []
            sealed[party] = self.seal_for(party, DELIVERY, delivery.pack(digests, width))
        visible = refusal is None and COORDINATOR in self.terms.disclosure.count
        return Outcome(self._delivery_for(self.name, shared, refusal), refusal, sealed, len(shared) if visible else None)

    def _delivery_for(self, party: str, shared: list[int], refusal: str | None) -> Delivery:
        if refusal is not None:
            return Delivery(REFUSED, None, None)
        learns = self.terms.learns(party)
        if learns == "membership":
            return Delivery(MEMBERSHIP, len(shared), tuple(shared) if party == self.name else ())
        return Delivery(COUNT, len(shared), None) if learns == "count" else Delivery(NOTHING, None, None)


class Sender(Party):
    """A party that answers the receiver's query once, with its OPRF answers and its programmed table."""

    _answered = False
    _once = threading.Lock()

    def respond(self, sealed_query: bytes) -> bytes:
        if not self.sizes:
            raise ProtocolOrderError("the run's adverts have not been admitted yet")
        receiver = self.terms.receiver
        blinded = unpack(self.open_from(receiver, QUERY, sealed_query), what=f"{receiver}'s blinded keys")
        if len(blinded) != self.sizes[receiver]:
            raise InvalidRequest(f"{receiver} sent {len(blinded)} blinded keys but advertised {self.sizes[receiver]}")
        with self._once:  # checked and set together: two concurrent queries get one answer
            if self._answered:
                raise ProtocolOrderError("this sender has already answered the run's query (a replay or a second question)")
            self._answered = True
        key = OprfKey()
        evaluated = key.evaluate(blinded)
        points = [to_field(t) for t in key.own(self.digests)]
        table = Table.program(list(zip(points, self.zero_shares(), strict=True)))
        return self.seal_for(receiver, RESPONSE, pack(evaluated) + table.pack())

    def accept(self, sealed_delivery: bytes) -> Delivery:
        """What the receiver tells this party; delivered keys must all be this party's own."""
        blob = self.open_from(self.terms.receiver, DELIVERY, sealed_delivery)
        if len(blob) != delivery_width(self.sizes):
            raise InvalidRequest("a PSI delivery is malformed")
        header = delivery_header(blob, self)
        if header.status != MEMBERSHIP or header.count is None:
            return header
        count = header.count
        index = {d: i for i, d in enumerate(self.digests)}
        delivered = unpack(blob[9 : 9 + POINT * count], what="the delivered shared keys")
        if len(set(delivered)) != count or any(d not in index for d in delivered):
            raise InvalidRequest("the receiver delivered keys this party does not hold, or repeated one")
        return Delivery(MEMBERSHIP, count, tuple(sorted(index[d] for d in delivered)))
