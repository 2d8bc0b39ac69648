"""A node's side of one secure-aggregation round, as a state machine.

Phases, each callable once and in order: `advertise` (fresh X25519 keys,
signed with this node's certificate key), `share_keys` (every participant's
signed keys are checked against the certificates this node accepts; then
Shamir shares of the self-mask seed and the masking key, encrypted to each
neighbour), `masked_input` (the encoded input plus masks), `confirm` (sign
the survivor set the coordinator announced), `unmask` (check that enough
survivors signed the same set, then reveal the self-mask share of each
survivor or the key share of each dropped peer, never both for one peer).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping

import numpy as np

from federation.errors import CohortRejected, InvalidRequest, PolicyDenied, ProtocolOrderError, RoundAborted
from federation.secagg import _crypto, shamir
from federation.secagg.cohort import Advert, PeerVerifier, Signer, advert_message, survivors_message
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
PHASES = ("new", "advertised", "shared", "masked", "confirmed", "done")


class SecAggClient:
    """One node in one round; `signer` is its certified identity, `peers` decides whom it accepts."""

    def __init__(self, config: SecAggConfig, index: int, *, signer: Signer, peers: PeerVerifier, min_cohort: int = 1) -> None:
        if not 0 <= index < len(config.participants):
            raise InvalidRequest(f"index {index} is not a participant")
        if config.participants[index] != signer.name:
            raise InvalidRequest(f"participant {index} is {config.participants[index]!r}, not this node ({signer.name!r})")
        self.config = config
        self.index = index
        self.min_cohort = min_cohort
        self.phase = "new"
        self._signer = signer
        self._peers = peers
        self._encryption_private, self.encryption_public = _crypto.generate_keypair()
        self._masking_private, self.masking_public = _crypto.generate_keypair()
        self._self_secret = _crypto.random_bytes(shamir.SECRET_BYTES)
        message = advert_message(config.session, index, signer.name, self.encryption_public, self.masking_public)
        self._advert = Advert(self.encryption_public, self.masking_public, signer.certificate, signer.sign(message))
        self._accepted: dict[int, Advert] = {}
        self._peer_keys: dict[int, tuple[bytes, bytes]] = {}
        self._held: dict[int, tuple[bytes, bytes]] = {}  # owner -> (self-mask share, masking-key share)
        self._masked_with: frozenset[int] = frozenset()
        self._survivors: frozenset[int] = frozenset()
        self._phase_lock = threading.Lock()

    def __getstate__(self) -> dict[str, object]:
        """The round's secrets and progress, without the signer, the verifier or the lock (see `rebind`)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_signer", "_peers", "_phase_lock")}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._phase_lock = threading.Lock()

    def rebind(self, signer: Signer, peers: PeerVerifier) -> None:
        """Give a round restored from a node's engine memory its signer and verifier back (Flower's engines)."""
        if signer.certificate != self._advert.certificate:
            raise InvalidRequest("a secure round restored under another certificate than the one that advertised it")
        self._signer, self._peers = signer, peers

    def _enter(self, expected: str, following: str) -> None:
        """Move to the next phase; atomic, so two concurrent calls can never both pass one phase."""
        with self._phase_lock:
            if self.phase != expected:
                raise ProtocolOrderError(
                    f"secure aggregation: expected phase after {expected!r}, but this round is at {self.phase!r}"
                )
            self.phase = following

    def require_phase(self, expected: str) -> None:
        """Refuse early (before any costly work or budget charge) a call the round is not ready for."""
        if self.phase != expected:
            raise ProtocolOrderError(f"secure aggregation: this round is at {self.phase!r}, not {expected!r}")

    @property
    def masking_group_needed(self) -> int:
        """The fewest parties, this node included, that must mask with it for any sum it enters."""
        return max(self.config.threshold, self.min_cohort)

    def _abort(self, error: Exception) -> Exception:
        self.phase = "done"  # a round this node rejected is never answered again
        return error

    @property
    def neighbours(self) -> frozenset[int]:
        return self.config.graph[self.index]

    @property
    def accepted(self) -> frozenset[int]:
        """Participants whose signed keys this node checked and accepted."""
        return frozenset(self._accepted)

    def advertise(self) -> Advert:
        """Phase 1: the public keys for share encryption and for pairwise masks, signed."""
        self._enter("new", "advertised")
        return self._advert

    def _check_adverts(self, adverts: Mapping[int, Advert]) -> dict[int, Advert]:
        """Every advertised participant must be a party this node accepts, each a different one."""
        n = len(self.config.participants)
        if any(not 0 <= j < n for j in adverts):
            raise InvalidRequest("keys offered for indices outside the cohort")
        if self.index in adverts and adverts[self.index] != self._advert:
            raise CohortRejected(f"the keys announced for this node ({self._signer.name!r}) are not the ones it advertised")
        seen = {hashlib.sha256(self._signer.certificate).hexdigest(): self.index}
        accepted: dict[int, Advert] = {}
        for j, advert in sorted(adverts.items()):
            if j == self.index:
                continue
            name = self.config.participants[j]
            message = advert_message(self.config.session, j, name, advert.encryption_public, advert.masking_public)
            self._peers.verify(name, advert.certificate, message, advert.signature)
            holder = hashlib.sha256(advert.certificate).hexdigest()
            if holder in seen:
                raise CohortRejected(f"participants {seen[holder]} and {j} use the same certificate")
            seen[holder] = j
            accepted[j] = advert
        accepted[self.index] = self._advert
        return accepted

    def share_keys(self, adverts: Mapping[int, Advert]) -> dict[int, bytes]:
        """Phase 2: check every participant's signed keys, then encrypted shares for each neighbour."""
        self._enter("advertised", "shared")
        try:
            self._accepted = self._check_adverts(adverts)
        except (CohortRejected, InvalidRequest) as error:
            raise self._abort(error) from None
        if len(self._accepted) < self.min_cohort:
            raise self._abort(
                PolicyDenied(
                    [f"only {len(self._accepted)} parties advertised keys, fewer than this node's minimum of {self.min_cohort}"]
                )
            )
        peer_keys = {j: a.keys for j, a in self._accepted.items() if j in self.neighbours}
        keys = [k for pair in peer_keys.values() for k in pair]
        if len(set(keys)) != len(keys) or self.encryption_public in keys or self.masking_public in keys:
            raise self._abort(InvalidRequest("peer public keys repeat: refusing a possibly replayed key set"))
        holders = sorted(set(peer_keys) | {self.index})
        if len(holders) < self.config.threshold:
            raise self._abort(RoundAborted(f"only {len(holders)} share holders remain, the threshold is {self.config.threshold}"))
        self._peer_keys = peer_keys
        xs = [h + 1 for h in holders]
        self_shares = shamir.split(self._self_secret, threshold=self.config.threshold, holders=xs)
        key_shares = shamir.split(self._masking_private, threshold=self.config.threshold, holders=xs)
        self._held[self.index] = (self_shares[self.index + 1], key_shares[self.index + 1])
        session = self.config.session
        sealed = {}
        for j, (encryption_public, _) in self._peer_keys.items():
            try:
                key = share_key(self._encryption_private, encryption_public, session)
            except InvalidRequest as error:
                raise self._abort(error) from None
            sealed[j] = _crypto.seal(
                key, self_shares[j + 1] + key_shares[j + 1], associated_data=share_binding(session, self.index, j)
            )
        return sealed

    def masked_input(self, encoded: np.ndarray, incoming: Mapping[int, bytes]) -> np.ndarray:
        """Phase 3: the encoded input (uint32) plus the self mask and one mask per peer that shared."""
        self._enter("shared", "masked")
        try:
            return self._masked_input(encoded, incoming)
        except (InvalidRequest, CohortRejected) as error:
            raise self._abort(error) from None

    def _masked_input(self, encoded: np.ndarray, incoming: Mapping[int, bytes]) -> np.ndarray:
        if encoded.dtype != np.uint32 or encoded.shape != (self.config.vector_length,):
            raise InvalidRequest(f"the encoded input must be {self.config.vector_length} uint32 values")
        unknown = set(incoming) - set(self._peer_keys)
        if unknown:
            raise self._abort(InvalidRequest(f"shares from peers whose keys this node never received: {sorted(unknown)}"))
        if len(incoming) + 1 < self.masking_group_needed:  # withheld shares would leave the input nearly bare
            raise self._abort(
                CohortRejected(
                    f"only {len(incoming)} peer(s) sent shares to mask with; this node needs "
                    f"{self.masking_group_needed - 1}, so that no sum over fewer than {self.masking_group_needed} parties "
                    "can be formed"
                )
            )
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

    def confirm(self, survivors: frozenset[int]) -> bytes:
        """Phase 4: sign the survivor set (every node whose masked input the coordinator holds).

        This node counts the cohort itself here, before anything of its
        secrets can leave: only participants it accepted count.
        """
        self._enter("masked", "confirmed")
        if not survivors <= self.accepted:
            raise self._abort(
                CohortRejected(
                    f"the survivor set names participants this node never accepted: {sorted(survivors - self.accepted)}"
                )
            )
        if self.index not in survivors:
            raise self._abort(ProtocolOrderError("this node's own input is not counted among the survivors"))
        needed = self.masking_group_needed
        if len(survivors) < needed:
            raise self._abort(
                PolicyDenied([f"the sum would cover {len(survivors)} parties, fewer than this node's minimum of {needed}"])
            )
        # The coordinator removes the masks of dropped peers, so only surviving mask partners protect this input:
        # every survivor insists on enough of them, so any sum that can be formed covers at least `needed` parties.
        partners = len(self._masked_with & survivors) + 1
        if partners < needed:
            raise self._abort(
                PolicyDenied(
                    [
                        f"only {partners - 1} of this node's mask partners survive; "
                        + f"any sum with it must cover at least {needed} parties"
                    ]
                )
            )
        self._survivors = survivors
        return self._signer.sign(survivors_message(self.config.session, survivors))

    def unmask(self, signatures: Mapping[int, bytes]) -> list[tuple[int, str, bytes]]:
        """Phase 5: if every survivor signed the same set, the shares that remove masks.

        Self-mask shares of survivors, masking-key shares of the peers this node
        masked with that did not survive; never both for one peer, because the
        node derives both lists from the one set it signed. Every survivor must
        have signed: a survivor's refusal (for instance because too few of its
        mask partners survive) must keep its self mask on, whatever the others see.
        """
        self._enter("confirmed", "done")
        strangers = set(signatures) - self._survivors
        if strangers:
            raise CohortRejected(f"survivor-set signatures from non-survivors {sorted(strangers)}")
        message = survivors_message(self.config.session, self._survivors)
        for j, signature in sorted(signatures.items()):
            if j != self.index:
                advert = self._accepted[j]
                try:
                    self._peers.verify(self.config.participants[j], advert.certificate, message, signature)
                except CohortRejected as error:
                    raise CohortRejected(f"survivor sets differ: {error.public}") from None
        missing = sorted(self._survivors - set(signatures))
        if missing:
            raise CohortRejected(f"survivor(s) {missing} did not confirm the survivor set")
        dropped = self._masked_with - self._survivors
        revealed = [(j, SELF_MASK, self._held[j][0]) for j in sorted(self._survivors & set(self._held))]
        revealed += [(j, MASKING_KEY, self._held[j][1]) for j in sorted(dropped)]
        return revealed
