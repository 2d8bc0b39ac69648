"""Who is in a round: signed key advertisements and signed survivor sets.

Bonawitz et al. (2017, section 4, active adversary) bind every party's keys to
a signing identity and add a consistency check: before revealing any share,
each node signs the survivor set it was told, and checks that enough
survivors signed the same set. A coordinator then can neither invent
participants (their keys would not verify against an accepted certificate)
nor tell different nodes different stories about who dropped.

Pure: the certificate checks are behind `PeerVerifier`, implemented by
`federation.trust.PeerTrust`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

LABEL_ADVERT = b"federation/secagg/v1/advertised-keys\x00"
LABEL_SURVIVORS = b"federation/secagg/v1/survivor-set\x00"


class Signer(Protocol):
    """This node's certified identity."""

    @property
    def name(self) -> str: ...

    @property
    def certificate(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


class PeerVerifier(Protocol):
    """Accepts or rejects a participant; raises CohortRejected with the reason."""

    def verify(self, name: str, certificate_der: bytes, message: bytes, signature: bytes) -> str:
        """Returns the fingerprint of the certificate that signed `message`."""
        ...


@dataclass(frozen=True)
class Advert:
    """One participant's round keys, its certificate and its signature over both keys."""

    encryption_public: bytes
    masking_public: bytes
    certificate: bytes
    signature: bytes

    @property
    def keys(self) -> tuple[bytes, bytes]:
        return self.encryption_public, self.masking_public


def _framed(*fields: bytes) -> bytes:
    return b"".join(len(f).to_bytes(4, "big") + f for f in fields)  # length-prefixed: injective


def advert_message(session: bytes, index: int, name: str, encryption_public: bytes, masking_public: bytes) -> bytes:
    """What a participant signs in AdvertiseKeys: its keys for this session, index and name."""
    return LABEL_ADVERT + _framed(session, index.to_bytes(4, "big"), name.encode(), encryption_public, masking_public)


def survivors_message(session: bytes, survivors: Iterable[int]) -> bytes:
    """What a survivor signs in ConfirmSurvivors: the set of inputs in the sum."""
    return LABEL_SURVIVORS + _framed(session, b"".join(i.to_bytes(4, "big") for i in sorted(survivors)))
