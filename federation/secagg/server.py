"""The coordinator's side of one secure-aggregation round, as a state machine.

It routes signed public keys and encrypted shares (which it cannot open),
sums the masked inputs, announces the survivor set and relays the survivors'
signatures over it, and removes the masks from the shares the survivors
reveal: self masks of every survivor, pairwise masks that dropped nodes left
behind. Below the threshold it aborts with `RoundAborted` and learns nothing.
The nodes check identities and signatures themselves; nothing here is trusted.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from federation.errors import InvalidRequest, ProtocolOrderError, RoundAborted
from federation.secagg import shamir
from federation.secagg.client import MASKING_KEY, SELF_MASK
from federation.secagg.cohort import Advert
from federation.secagg.config import SecAggConfig
from federation.secagg.masking import MaskAccumulator, pair_sign, pairwise_seed, self_mask_seed


class SecAggServer:
    def __init__(self, config: SecAggConfig) -> None:
        self.config = config
        self.phase = "new"
        self._keys: dict[int, Advert] = {}
        self._shared: frozenset[int] = frozenset()
        self._masked: dict[int, np.ndarray] = {}
        self._masked_with: dict[int, frozenset[int]] = {}
        self.survivors: frozenset[int] = frozenset()
        self._confirmed: frozenset[int] = frozenset()
        self.dropouts: dict[str, list[int]] = {}

    def _enter(self, expected: str, following: str) -> None:
        if self.phase != expected:
            raise ProtocolOrderError(f"secure aggregation server: expected {expected!r}, at {self.phase!r}")
        self.phase = following

    def _require(self, alive: frozenset[int], stage: str) -> None:
        if len(alive) < self.config.threshold:
            self.phase = "aborted"
            raise RoundAborted(f"{len(alive)} node(s) remained after {stage}, below the threshold of {self.config.threshold}")

    def _note_dropouts(self, stage: str, before: frozenset[int], after: frozenset[int]) -> None:
        lost = sorted(before - after)
        if lost:
            self.dropouts[stage] = lost

    def collect_keys(self, keys: Mapping[int, Advert]) -> dict[int, Advert]:
        """After AdvertiseKeys: every advertised key set, sent to every node that advertised.

        Each node checks all of them (not only its neighbours'), so it can count
        the whole cohort against its minimum; it keeps its neighbours' keys.
        """
        self._enter("new", "keys")
        everyone = frozenset(range(len(self.config.participants)))
        alive = frozenset(keys)
        if not alive <= everyone:
            raise InvalidRequest("keys from unknown participants")
        self._note_dropouts("advertise-keys", everyone, alive)
        self._require(alive, "advertising keys")
        self._keys = dict(keys)
        return dict(self._keys)

    def route_shares(self, sealed: Mapping[int, Mapping[int, bytes]]) -> dict[int, dict[int, bytes]]:
        """After ShareKeys: for each sharer, the encrypted shares addressed to it by other sharers."""
        self._enter("keys", "shares")
        alive = frozenset(sealed) & frozenset(self._keys)
        for sender in alive:
            strangers = set(sealed[sender]) - self.config.graph[sender]
            if strangers:
                self.phase = "aborted"
                raise InvalidRequest(f"node {sender} sent shares to non-neighbour(s) {sorted(strangers)}")
        self._note_dropouts("share-keys", frozenset(self._keys), alive)
        self._require(alive, "sharing keys")
        self._shared = alive
        routed: dict[int, dict[int, bytes]] = {i: {} for i in alive}
        for sender in alive:
            for receiver, box in sealed[sender].items():
                if receiver in alive:
                    routed[receiver][sender] = box
        self._masked_with = {i: frozenset(routed[i]) for i in alive}
        return routed

    def collect_masked(self, masked: Mapping[int, np.ndarray]) -> frozenset[int]:
        """After MaskedUpdate: the survivor set every survivor is asked to sign."""
        self._enter("shares", "masked")
        alive = frozenset(masked) & self._shared
        for i in alive:
            vector = masked[i]
            if vector.dtype != np.uint32 or vector.shape != (self.config.vector_length,):
                self.phase = "aborted"
                raise InvalidRequest(f"node {i} sent a masked vector of the wrong type or length")
        self._note_dropouts("masked-update", self._shared, alive)
        self._require(alive, "masked updates")
        self._masked = {i: masked[i] for i in alive}
        self.survivors = alive
        return alive

    def collect_confirmations(self, signatures: Mapping[int, bytes]) -> dict[int, bytes]:
        """After ConfirmSurvivors: every survivor's signature over the survivor set, relayed to all of them.

        A survivor that does not confirm aborts the round: its input is in the
        sum, and its self mask is only removed with its consent.
        """
        self._enter("masked", "confirmed")
        confirmed = {i: signatures[i] for i in signatures if i in self.survivors}
        self._note_dropouts("confirm-survivors", self.survivors, frozenset(confirmed))
        missing = sorted(self.survivors - set(confirmed))
        if missing:  # the nodes reveal nothing unless every survivor signed the same set
            self.phase = "aborted"
            raise RoundAborted(f"survivor(s) {missing} did not confirm the survivor set")
        self._confirmed = frozenset(confirmed)
        return confirmed

    def finish(self, revealed: Mapping[int, list[tuple[int, str, bytes]]]) -> np.ndarray:
        """After Unmask: the uint32 sum of the survivors' encoded inputs."""
        self._enter("confirmed", "done")
        responders = frozenset(revealed) & self._confirmed
        self._note_dropouts("unmask", self._confirmed, responders)
        self_shares: dict[int, dict[int, bytes]] = {}
        key_shares: dict[int, dict[int, bytes]] = {}
        n = len(self.config.participants)
        for holder in responders:
            for owner, kind, share in revealed[holder]:
                if not 0 <= owner < n:
                    self.phase = "aborted"
                    raise InvalidRequest(f"node {holder} revealed a share of {owner}, who is not in the cohort")
                if holder not in self.config.holders[owner]:
                    self.phase = "aborted"
                    raise InvalidRequest(f"node {holder} revealed a share of {owner} it cannot hold")
                target = self_shares if kind == SELF_MASK else key_shares if kind == MASKING_KEY else None
                if target is None:
                    self.phase = "aborted"
                    raise InvalidRequest(f"unknown share kind {kind!r}")
                target.setdefault(owner, {})[holder + 1] = share
        survivors = frozenset(self._masked)
        dropped = self._shared - survivors
        t = self.config.threshold
        missing = [j for j in survivors if len(self_shares.get(j, {})) < t]
        missing += [j for j in dropped if len(key_shares.get(j, {})) < t]
        if missing:
            self.phase = "aborted"
            raise RoundAborted(f"too few shares to unmask node(s) {sorted(missing)} (threshold {t})")
        total = np.zeros(self.config.vector_length, dtype=np.uint32)
        for vector in self._masked.values():
            np.add(total, vector, out=total)
        accumulator = MaskAccumulator(total)
        session = self.config.session
        for j in sorted(survivors):
            accumulator.subtract(self_mask_seed(shamir.combine(self_shares[j], threshold=t), session))
        for j in sorted(dropped):
            private = shamir.combine(key_shares[j], threshold=t)
            for k in sorted(survivors):
                if j in self._masked_with[k]:  # k masked with j, and j's input never arrived
                    accumulator.apply(pairwise_seed(private, self._keys[k].masking_public, session), -pair_sign(k, j))
        return total
