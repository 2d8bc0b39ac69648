"""Mask seeds and their expansion: pairwise masks cancel in the sum, self masks hide late inputs.

Every seed is 256 bits from HKDF, bound by its label and the session id to
one use in one round; masks are ChaCha20 keystream written straight into
uint32 arrays, so masking runs at keystream speed.
"""

from __future__ import annotations

import numpy as np

from federation.secagg import _crypto


def self_mask_seed(secret: bytes, session: bytes) -> bytes:
    return _crypto.hkdf(secret, info=_crypto.LABEL_SELF_MASK, salt=session)


def pairwise_seed(private: bytes, peer_public: bytes, session: bytes) -> bytes:
    return _crypto.hkdf(_crypto.agree(private, peer_public), info=_crypto.LABEL_PAIRWISE_MASK, salt=session)


def share_key(private: bytes, peer_public: bytes, session: bytes) -> bytes:
    return _crypto.hkdf(_crypto.agree(private, peer_public), info=_crypto.LABEL_SHARE_ENCRYPTION, salt=session)


def share_binding(session: bytes, sender: int, receiver: int) -> bytes:
    """Associated data of an encrypted share: run and round (via the session), sender, receiver."""
    return session + sender.to_bytes(4, "big") + receiver.to_bytes(4, "big")


class MaskAccumulator:
    """Adds or subtracts expanded masks into a uint32 vector, reusing one scratch buffer."""

    def __init__(self, vector: np.ndarray) -> None:
        if vector.dtype != np.uint32 or vector.ndim != 1:
            raise ValueError("masks apply to 1-D uint32 vectors")
        self.vector = vector
        self._scratch = np.empty_like(vector)

    def add(self, seed: bytes) -> None:
        np.add(self.vector, _crypto.keystream_into(seed, self._scratch), out=self.vector)

    def subtract(self, seed: bytes) -> None:
        np.subtract(self.vector, _crypto.keystream_into(seed, self._scratch), out=self.vector)

    def apply(self, seed: bytes, sign: int) -> None:
        (self.add if sign > 0 else self.subtract)(seed)


def pair_sign(i: int, j: int) -> int:
    """Node i adds the pair's mask when i < j and subtracts it otherwise, so the pair cancels."""
    return 1 if i < j else -1
