"""A node's side of one secure-aggregation round, as a state machine.

Phases, each callable once and in order: `advertise` (fresh X25519 keys),
`share_keys` (Shamir shares of the self-mask seed and the masking key,
encrypted to each neighbour), `masked_input` (the encoded input plus masks),
`unmask` (shares that let the coordinator remove masks: the self-mask share
of a survivor or the key share of a dropped peer, never both for one peer).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from federation.errors import InvalidRequest, PolicyDenied, ProtocolOrderError, RoundAborted
from federation.secagg import _crypto, shamir
from federation.secagg.config import SecAggConfig
from federation.secagg.masking import (
    MaskAccumulator,
    pair_sign,
    pairwise_seed,
    self_mask_seed,
    share_binding,
    share_key,
)

SELF_MASK = "self-mask"
MASKING_KEY = "masking-key"
PHASES = ("new", "advertised", "shared", "masked", "done")


class SecAggClient:
    def __init__(self, config: SecAggConfig, index: int, *, min_cohort: int = 1) -> None:
        if not 0 <= index < len(config.participants):
            raise InvalidRequest(f"index {index} is not a participant")
        self.config = config
        self.index = index
        self.min_cohort = min_cohort
        self.phase = "new"
        self._encryption_private, self.encryption_public = _crypto.generate_keypair()
        self._masking_private, self.masking_public = _crypto.generate_keypair()
        self._self_secret = _crypto.random_bytes(shamir.SECRET_BYTES)
        self._peer_keys: dict[int, tuple[bytes, bytes]] = {}
        self._held: dict[int, tuple[bytes, bytes]] = {}  # owner -> (self-mask share, masking-key share)
        self._masked_with: frozenset[int] = frozenset()

    def _enter(self, expected: str, following: str) -> None:
        if self.phase != expected:
            raise ProtocolOrderError(
                f"secure aggregation: expected phase after {expected!r}, but this round is at {self.phase!r}"
            )
        self.phase = following

    @property
    def neighbours(self) -> frozenset[int]:
        return self.config.graph[self.index]

    def advertise(self) -> tuple[bytes, bytes]:
        """Phase 1: the public keys for share encryption and for pairwise masks."""
        self._enter("new", "advertised")
        return self.encryption_public, self.masking_public

    def share_keys(self, peer_keys: Mapping[int, tuple[bytes, bytes]]) -> dict[int, bytes]:
        """Phase 2: encrypted shares of this node's two secrets, one per neighbour that advertised."""
        self._enter("advertised", "shared")
        unknown = set(peer_keys) - self.neighbours
        if unknown:
            raise InvalidRequest(f"keys offered for non-neighbours {sorted(unknown)}")
        keys = [k for pair in peer_keys.values() for k in pair]
        if len(set(keys)) != len(keys) or self.encryption_public in keys or self.masking_public in keys:
            raise InvalidRequest("peer public keys repeat: refusing a possibly replayed key set")
        holders = sorted(set(peer_keys) | {self.index})
        if len(holders) < self.config.threshold:
            raise RoundAborted(f"only {len(holders)} share holders remain, the threshold is {self.config.threshold}")
        self._peer_keys = dict(peer_keys)
        xs = [h + 1 for h in holders]
        self_shares = shamir.split(self._self_secret, threshold=self.config.threshold, holders=xs)
        key_shares = shamir.split(self._masking_private, threshold=self.config.threshold, holders=xs)
        self._held[self.index] = (self_shares[self.index + 1], key_shares[self.index + 1])
        session = self.config.session
        sealed = {}
        for j, (encryption_public, _) in self._peer_keys.items():
            key = share_key(self._encryption_private, encryption_public, session)
            sealed[j] = _crypto.seal(
                key, self_shares[j + 1] + key_shares[j + 1], associated_data=share_binding(session, self.index, j)
            )
        return sealed

    def masked_input(self, encoded: np.ndarray, incoming: Mapping[int, bytes]) -> np.ndarray:
        """Phase 3: the encoded input (uint32) plus the self mask and one mask per peer that shared."""
        self._enter("shared", "masked")
        if encoded.dtype != np.uint32 or encoded.shape != (self.config.vector_length,):
            raise InvalidRequest(f"the encoded input must be {self.config.vector_length} uint32 values")
        unknown = set(incoming) - set(self._peer_keys)
        if unknown:
            raise InvalidRequest(f"shares from peers whose keys this node never received: {sorted(unknown)}")
        session = self.config.session
        for j, sealed in incoming.items():
            key = share_key(self._encryption_private, self._peer_keys[j][0], session)
            plain = _crypto.open_sealed(key, sealed, associated_data=share_binding(session, j, self.index))
            if len(plain) != 2 * shamir.SHARE_BYTES:
                raise InvalidRequest(f"the share from peer {j} has the wrong length")
            self._held[j] = (plain[: shamir.SHARE_BYTES], plain[shamir.SHARE_BYTES :])
        self._masked_with = frozenset(incoming)
        masked = encoded.copy()
        accumulator = MaskAccumulator(masked)
        accumulator.add(self_mask_seed(self._self_secret, session))
        for j in sorted(self._masked_with):
            accumulator.apply(pairwise_seed(self._masking_private, self._peer_keys[j][1], session), pair_sign(self.index, j))
        return masked

    def unmask(self, survivors: frozenset[int], dropped: frozenset[int]) -> list[tuple[int, str, bytes]]:
        """Phase 4: self-mask shares of survivors, masking-key shares of dropped peers; never both.

        `survivors` is every node whose masked input the coordinator holds, so
        this node counts the cohort itself before anything leaves it.
        """
        both = survivors & dropped
        if both:
            self.phase = "done"  # a coordinator that asks for both is not answered again
            raise PolicyDenied([f"refusing to reveal both shares of peer(s) {sorted(both)}"])
        self._enter("masked", "done")
        if any(not 0 <= j < len(self.config.participants) for j in survivors | dropped):
            raise InvalidRequest("unmask names indices outside the cohort")
        if self.index not in survivors:
            raise ProtocolOrderError("this node's own input is not counted among the survivors")
        needed = max(self.config.threshold, self.min_cohort)
        if len(survivors) < needed:
            raise PolicyDenied([f"the sum would cover {len(survivors)} parties, fewer than this node's minimum of {needed}"])
        if not dropped <= self._masked_with:
            raise InvalidRequest("a peer reported dropped never shared masks with this node")
        revealed = [(j, SELF_MASK, self._held[j][0]) for j in sorted(survivors & set(self._held))]
        revealed += [(j, MASKING_KEY, self._held[j][1]) for j in sorted(dropped)]
        return revealed
