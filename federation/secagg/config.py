"""One round's public secure-aggregation parameters, identical at every party."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property

from federation.errors import InvalidRequest
from federation.secagg.graph import neighbours
from federation.secagg.quantize import Quantizer

PAYLOADS = ("update", "stats", "eval")


def session_id(run_id: str, round_: int, participants: tuple[str, ...], *, payload: str, terms: str = "") -> bytes:
    """A public 32-byte id that binds keys, shares, masks and signatures to one run, round, payload and cohort.

    `terms` carries the rest of what the coordinator announced (its identity and
    every round parameter), so nodes told different terms never share a session.
    """
    fields = [run_id.encode(), str(round_).encode(), payload.encode(), terms.encode(), *(p.encode() for p in participants)]
    material = b"".join(len(f).to_bytes(4, "big") + f for f in fields)  # length-prefixed: injective
    return hashlib.sha256(b"federation/secagg/v1/session\x00" + material).digest()


@dataclass(frozen=True)
class SecAggConfig:
    """Who takes part (index = position), the threshold, the graph and the encoding.

    `threshold` is the number of a node's share holders (its neighbours and
    itself) that must survive for its secrets to be reconstructed; it must be
    more than half of that neighbourhood so no two disjoint groups of holders
    can both reconstruct, and at least 2.
    """

    session: bytes
    participants: tuple[str, ...]
    threshold: int
    degree: int | None
    clip: float
    vector_length: int

    def __post_init__(self) -> None:
        problems = []
        n = len(self.participants)
        if len(self.session) != 32:
            problems.append("the session id must be 32 bytes")
        if self.degree is not None and self.degree < n - 1 and (self.degree < 2 or self.degree % 2):
            problems.append(f"a SecAgg+ degree must be even and at least 2, got {self.degree}")
        if n < 2 or len(set(self.participants)) != n:
            problems.append("secure aggregation needs at least two distinct participants")
        smallest = min((len(h) for h in self.holders), default=0) if n >= 2 and not problems else 0
        if n >= 2 and not problems and not (smallest // 2 < self.threshold <= smallest):
            problems.append(
                f"threshold {self.threshold} must be more than half of, and at most, the {smallest} share holders per node"
            )
        if self.vector_length < 1:
            problems.append("the vector length must be positive")
        if not (math.isfinite(self.clip) and self.clip > 0):
            problems.append(f"the clip must be a positive finite number, got {self.clip}")
        if problems:
            raise InvalidRequest("invalid secure-aggregation parameters: " + "; ".join(problems))

    @cached_property
    def graph(self) -> list[frozenset[int]]:
        return neighbours(len(self.participants), degree=self.degree, seed=self.session)

    @cached_property
    def holders(self) -> list[frozenset[int]]:
        """For each node, who holds shares of its secrets: its neighbours and itself."""
        return [self.graph[i] | {i} for i in range(len(self.participants))]

    @cached_property
    def quantizer(self) -> Quantizer:
        return Quantizer(self.clip, len(self.participants))

    def index_of(self, node_id: str) -> int:
        try:
            return self.participants.index(node_id)
        except ValueError:
            raise InvalidRequest(f"{node_id!r} is not a participant of this round") from None


@dataclass(frozen=True)
class RoundParameters:
    """What the coordinator announces for a round; the session id is derived, never sent."""

    participants: tuple[str, ...]
    threshold: int
    degree: int | None
    clip: float
    vector_length: int
    max_weight: float
    payload: str = "update"  # "stats": a node's bounded statistics; "eval": its bounded evaluation sums

    def __post_init__(self) -> None:
        if not (self.max_weight >= 1 and self.max_weight < 2**53):
            raise InvalidRequest(f"max_weight must be at least 1, got {self.max_weight}")
        if self.payload not in PAYLOADS:
            raise InvalidRequest(f"payload must be one of {list(PAYLOADS)}, got {self.payload!r}")

    def config(self, run_id: str, round_: int, *, caller: str = "") -> SecAggConfig:
        """The round's configuration; nodes and coordinators pass the coordinator's identity as `caller`."""
        terms = (
            f"caller={caller};threshold={self.threshold};degree={self.degree};clip={self.clip!r};"
            f"length={self.vector_length};max_weight={self.max_weight!r}"
        )
        return SecAggConfig(
            session=session_id(run_id, round_, self.participants, payload=self.payload, terms=terms),
            participants=self.participants,
            threshold=self.threshold,
            degree=self.degree,
            clip=self.clip,
            vector_length=self.vector_length,
        )


def default_threshold(holders: int) -> int:
    """A strict majority of a node's share holders."""
    return holders // 2 + 1
