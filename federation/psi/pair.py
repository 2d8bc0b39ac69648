"""Two-party PSI in sealed chunks: Diffie-Hellman on X25519 (`blind`), for sets of millions of keys.

With two parties there is no partial overlap to hide, so the multi-party
protocol's oblivious PRF and tables are not needed: the parties run the
Diffie-Hellman protocol whose security argument is in `blind`, over the
run's digests (the terms' digest is in every hash), after the same signed
terms and adverts as every PSI run (`session`). Each step is a stream of
chunks sealed for the other party alone and bound to their step, index
and count, so the coordinator relays ciphertext it can neither read,
reorder, drop, replay nor splice:

    own       each party's digests raised to its secret: the receiver's in
              its own order, the sender's in a fresh random order (so their
              order says nothing of its keys)
    answer    the sender raises the receiver's points to its secret, in
              order, and keeps 12 bytes of each (the chance that any of
              10^12 pairs of distinct keys collide is below 2^-56)
              the receiver raises the sender's points to its secret and
              keeps 12 bytes of each: equal tags are the shared keys
    delivery  the receiver tells the sender what the terms grant (the
              positions of its shared points, the count, or nothing),
              padded to one length, which the terms fix, so the coordinator
              learns nothing by it

Whom it protects against: the coordinator sees the set sizes (in the
adverts) and ciphertext; each party learns the other's set size; the
receiver learns the shared keys; the sender learns what the delivery
grants. Semi-honest parties, as in `blind`: a party that blinds chosen keys
can test their membership, bounded by each policy's minimum size.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from federation.errors import InvalidRequest, ProtocolOrderError
from federation.psi.blind import POINT, Blinder, pack
from federation.psi.multi_party import COUNT, MEMBERSHIP, NOTHING, REFUSED, Delivery, Outcome, delivery_header
from federation.psi.plan import COORDINATOR, Granted, size_refusal
from federation.psi.session import Party, Terms
from federation.secagg.cohort import Signer

OWN, ANSWER, DELIVERY = "own", "answer", "delivery"
CHUNK = 32_768  # points per chunk: 1 MiB sealed, well below a 4 MiB message
TAG = 12  # bytes kept of a point raised to both secrets: 10^12 pairs collide with probability below 2^-56
INDEX = 4  # bytes of a position in a delivery
Chunk = tuple[int, int, bytes]  # (index, total, sealed)


def chunk_count(points: int) -> int:
    return max(1, math.ceil(points / CHUNK))


class _Intake:
    """Chunks of one step from the peer: in order, each once, the advertised number of points in all."""

    def __init__(self, step: str, points: int, width: int) -> None:
        self.step, self.points, self.width = step, points, width
        self.total = chunk_count(points)
        self.next = 0

    def expect(self, index: int, total: int, payload: bytes) -> bytes:
        if total != self.total or index != self.next:
            raise InvalidRequest(f"{self.step} chunk {index} of {total} arrived; chunk {self.next} of {self.total} was due")
        size = min(CHUNK, self.points - index * CHUNK) if self.points else 0
        if len(payload) != size * self.width:
            raise InvalidRequest(f"{self.step} chunk {index} holds {len(payload)} bytes, not {size} values of {self.width}")
        self.next += 1
        return payload

    def values(self, index: int, total: int, payload: bytes) -> list[bytes]:
        """`expect`, split into its values."""
        checked = self.expect(index, total, payload)
        return [checked[i : i + self.width] for i in range(0, len(checked), self.width)]

    @property
    def done(self) -> bool:
        return self.next == self.total


class _PairParty(Party):
    """What both parties of a pair run share: their secret, their own points in chunks, the peer's name."""

    def __init__(self, terms: Terms, keys: Sequence[str], *, min_intersection: int, signer: Signer) -> None:
        if len(terms.parties) != 2:
            raise InvalidRequest("the chunked two-party protocol runs between exactly two parties")
        super().__init__(terms, keys, min_intersection=min_intersection, signer=signer)
        self._blinder = Blinder()  # this run's secret scalar: fresh, never stored
        self.order: np.ndarray | None = None  # the position of each point sent, in the party's own keys

    def _begin(self) -> None:
        if not self.sizes:
            raise ProtocolOrderError("the run's adverts have not been admitted yet")

    @property
    def peer(self) -> str:
        return next(p for p in self.terms.parties if p != self.name)

    def _seal(self, step: str, index: int, total: int, payload: bytes) -> bytes:
        return self.seal_for(self.peer, f"{step}/{index}/{total}", payload)

    def _open(self, step: str, chunk: Chunk) -> bytes:
        index, total, sealed = chunk
        return self.open_from(self.peer, f"{step}/{index}/{total}", sealed)

    def _order(self) -> np.ndarray:
        return np.arange(len(self.digests))

    def own(self) -> Iterator[Chunk]:
        """This party's digests raised to its secret, sealed in chunks (streamed once)."""
        self._begin()
        if self.order is not None:
            raise ProtocolOrderError("this party's points were already sent in this run")
        order = self.order = self._order()
        total = chunk_count(len(order))
        for index in range(total):
            points = [self.digests[i] for i in order[index * CHUNK : (index + 1) * CHUNK].tolist()]
            yield index, total, self._seal(OWN, index, total, pack(self._blinder.blind(points)))
        self.digests = []  # sent once, never needed again: a million of them hold 70 MB


class PairSender(_PairParty):
    """Answers the receiver's points in order; sends its own in a random order; takes the delivery."""

    def _order(self) -> np.ndarray:
        """A uniformly random permutation from the operating system's CSPRNG (ties among 64-bit draws: negligible)."""
        return np.argsort(np.frombuffer(secrets.token_bytes(8 * len(self.digests)), dtype=np.uint64), kind="stable")

    def answer(self, chunk: Chunk) -> None:
        """Raise one chunk of the receiver's points to this party's secret; kept until `answers` streams them."""
        self._begin()
        if not hasattr(self, "_intake"):
            self._intake = _Intake(f"{self.peer}'s points", self.sizes[self.peer], POINT)
            self._answers: list[bytes] = []
        if self._intake.done:
            raise ProtocolOrderError("the receiver's points were all answered already (a replay or a second question)")
        points = self._intake.values(chunk[0], chunk[1], self._open(OWN, chunk))
        tags = b"".join(p[:TAG] for p in self._blinder.blind(points))
        self._answers.append(self._seal(ANSWER, chunk[0], chunk[1], tags))

    def answers(self) -> Iterator[Chunk]:
        intake = getattr(self, "_intake", None)
        if intake is None or not intake.done:
            raise ProtocolOrderError("the receiver's points have not all arrived")
        answers, self._answers = self._answers, []
        if not answers:
            raise ProtocolOrderError("the answers were already sent")
        yield from ((index, len(answers), sealed) for index, sealed in enumerate(answers))

    def accept(self, chunks: Iterable[Chunk]) -> Delivery:
        """The receiver's delivery; every position must be one of this party's own points."""
        width = delivery_width(self.terms, self.name, self.sizes)
        intake = _Intake("the delivery", width, 1)
        blob = b"".join(intake.expect(i, t, self.open_from(self.peer, f"{DELIVERY}/{i}/{t}", s)) for i, t, s in chunks)
        if not intake.done:
            raise InvalidRequest("a PSI delivery is incomplete")
        header = delivery_header(blob, self)
        if header.status != MEMBERSHIP or header.count is None:
            return header
        count = header.count
        positions = [int.from_bytes(blob[9 + INDEX * i : 9 + INDEX * (i + 1)], "big") for i in range(count)]
        order = self.order
        if order is None or len(set(positions)) != count or any(p >= len(order) for p in positions):
            raise InvalidRequest("the receiver delivered positions that are not this party's own points")
        return Delivery(MEMBERSHIP, count, tuple(sorted(order[positions].tolist())))


def matches(mine: bytes | bytearray, theirs: bytes | bytearray) -> tuple[list[int], list[int]]:
    """Positions i in `mine` and j in `theirs` of equal tags, sorted by i; equal tags within `theirs` are refused.

    Vectorised: the tags are sorted by their first 8 bytes and looked up, and
    every candidate is confirmed on all 12, so a collision of prefixes can
    neither add nor (with the fallback) lose a match.
    """
    a = np.frombuffer(mine, dtype=np.uint8).reshape(-1, TAG)
    b = np.frombuffer(theirs, dtype=np.uint8).reshape(-1, TAG)
    prefix_a, prefix_b = a[:, :8].copy().view("<u8").ravel(), b[:, :8].copy().view("<u8").ravel()
    order = np.argsort(prefix_b, kind="stable")
    ordered = prefix_b[order]
    repeated = np.nonzero(ordered[1:] == ordered[:-1])[0]
    if len(repeated):  # a prefix shared by two tags: look every tag up whole
        found = {bytes(tag): j for j, tag in enumerate(b)}
        if len(found) != len(b):
            raise InvalidRequest("the sender's points repeat: its keys were not distinct")
        pairs = [(i, found[bytes(tag)]) for i, tag in enumerate(a) if bytes(tag) in found]
        return [i for i, _ in pairs], [j for _, j in pairs]
    slot = np.minimum(np.searchsorted(ordered, prefix_a), max(len(ordered) - 1, 0))
    candidate = np.nonzero(ordered[slot] == prefix_a)[0] if len(ordered) else np.zeros(0, dtype=np.int64)
    j = order[slot[candidate]]
    whole = np.all(a[candidate] == b[j], axis=1)
    return candidate[whole].tolist(), j[whole].tolist()


def delivery_width(terms: Terms, sender: str, sizes: Mapping[str, int]) -> int:
    """Room for the largest possible intersection's positions (the smaller set) if the terms grant the sender membership."""
    return 9 + (INDEX * min(sizes.values()) if terms.learns(sender) == "membership" else 0)


class PairReceiver(_PairParty):
    """Learns which of its keys the sender holds; tells the sender what the terms grant."""

    def take(self, step: str, chunk: Chunk) -> None:
        """A chunk of the sender's own points (raised here and kept as tags) or of its answers (kept in order)."""
        self._begin()
        if not hasattr(self, "_intakes"):
            self._tags = {OWN: bytearray(), ANSWER: bytearray()}  # packed: a million keys cost 12 MB, not 150
            self._intakes = {
                OWN: _Intake(f"{self.peer}'s points", self.sizes[self.peer], POINT),
                ANSWER: _Intake(f"{self.peer}'s answers", self.sizes[self.name], TAG),
            }
        if step not in self._intakes:
            raise InvalidRequest(f"a receiver takes {list(self._intakes)} chunks, not {step[:40]!r}")
        intake = self._intakes[step]
        if intake.done:
            raise ProtocolOrderError(f"every chunk of the sender's {step} arrived already (a replay)")
        if step == ANSWER:
            self._tags[ANSWER] += intake.expect(chunk[0], chunk[1], self._open(step, chunk))
            return
        values = intake.values(chunk[0], chunk[1], self._open(step, chunk))
        self._tags[OWN] += b"".join(point[:TAG] for point in self._blinder.blind(values))

    def finish(self, granted: Mapping[str, Granted]) -> Outcome:
        intakes = getattr(self, "_intakes", None)
        if intakes is None or not all(i.done for i in intakes.values()):
            raise ProtocolOrderError("the sender's points and answers have not all arrived")
        shared, positions = matches(self._tags[ANSWER], self._tags[OWN])
        del self._tags
        refusal = size_refusal(len(shared), granted)
        if refusal is None and len(shared) < self.minimum:
            refusal = "the intersection is below a party's advertised minimum size: nobody learns which firms were shared"
        self._delivery = self._pack(self._delivery_for_sender(sorted(positions), refusal))
        mine = Delivery(REFUSED, None, None) if refusal else Delivery(MEMBERSHIP, len(shared), tuple(shared))
        visible = refusal is None and COORDINATOR in self.terms.disclosure.count
        return Outcome(mine, refusal, {}, len(shared) if visible else None)

    def _delivery_for_sender(self, positions: list[int], refusal: str | None) -> Delivery:
        if refusal is not None:
            return Delivery(REFUSED, None, None)
        learns = self.terms.learns(self.peer)
        if learns == "membership":
            return Delivery(MEMBERSHIP, len(positions), tuple(positions))
        return Delivery(COUNT, len(positions), None) if learns == "count" else Delivery(NOTHING, None, None)

    def _pack(self, delivery: Delivery) -> bytes:
        count = (-1 if delivery.count is None else delivery.count).to_bytes(8, "big", signed=True)
        body = bytes([delivery.status]) + count
        if delivery.status == MEMBERSHIP and delivery.shared is not None:
            body += b"".join(p.to_bytes(INDEX, "big") for p in delivery.shared)
        return body + bytes(delivery_width(self.terms, self.peer, self.sizes) - len(body))

    def delivery(self) -> Iterator[Chunk]:
        blob = getattr(self, "_delivery", None)
        if blob is None:
            raise ProtocolOrderError("the run has not finished, or its delivery was sent already")
        del self._delivery
        total = chunk_count(len(blob))
        for index in range(total):
            part = blob[index * CHUNK : (index + 1) * CHUNK]
            yield index, total, self.seal_for(self.peer, f"{DELIVERY}/{index}/{total}", part)
