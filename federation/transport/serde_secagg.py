"""Secure aggregation's wire messages: round parameters, key adverts, shares, survivors, signatures.

Every list is bounded by the largest round a node takes part in and every
byte string by the size of what it carries, so a malformed message is an
`InvalidRequest` before the protocol state machine sees it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from federation.errors import InvalidRequest
from federation.proto.v1 import node_pb2 as pb
from federation.secagg.cohort import Advert
from federation.secagg.config import RoundParameters
from federation.transport.bounds import bounded_blob, bounded_count, bounded_name, bounded_names

T = TypeVar("T")

MAX_PARTICIPANTS = 1000  # of a secure round: participants, peers' keys, shares, survivors, signatures
MAX_PARTY_NAME = 63  # `transport.tls` issues certificates only for such names
MAX_KEY_BYTES = 64  # an X25519 public key is 32
MAX_CERTIFICATE_BYTES = 16 << 10  # a DER certificate of the federation is well under 1 KiB
MAX_SIGNATURE_BYTES = 512  # ECDSA-SHA256 in DER is at most 72
MAX_SHARE_BYTES = 1024  # two sealed Shamir shares are about 100


def parameters_to_pb(p: RoundParameters) -> pb.SecAggParameters:
    return pb.SecAggParameters(
        participants=list(p.participants),
        threshold=p.threshold,
        degree=p.degree or 0,
        clip=p.clip,
        vector_length=p.vector_length,
        max_weight=p.max_weight,
        payload=p.payload,
    )


def parameters_from_pb(m: pb.SecAggParameters) -> RoundParameters:
    return RoundParameters(
        participants=bounded_names(m.participants, "participants", count=MAX_PARTICIPANTS, limit=MAX_PARTY_NAME),
        threshold=m.threshold,
        degree=m.degree or None,
        clip=m.clip,
        vector_length=m.vector_length,
        max_weight=m.max_weight,
        payload=bounded_name(m.payload, "the payload", limit=32) or "update",
    )


def advert_to_pb(advert: Advert) -> pb.AdvertiseKeysReply:
    return pb.AdvertiseKeysReply(
        encryption_public_key=advert.encryption_public,
        masking_public_key=advert.masking_public,
        certificate=advert.certificate,
        signature=advert.signature,
    )


def advert_from_pb(m: pb.AdvertiseKeysReply) -> Advert:
    return Advert(m.encryption_public_key, m.masking_public_key, m.certificate, m.signature)


def peers_to_pb(adverts: dict[int, Advert]) -> list[pb.PeerKeys]:
    return [
        pb.PeerKeys(
            index=i,
            encryption_public_key=a.encryption_public,
            masking_public_key=a.masking_public,
            certificate=a.certificate,
            signature=a.signature,
        )
        for i, a in sorted(adverts.items())
    ]


def _by_index(pairs: Iterable[tuple[int, T]], what: str) -> dict[int, T]:
    """Items keyed by participant index; an index given twice is malformed."""
    result: dict[int, T] = {}
    for index, item in pairs:
        if index in result:
            raise InvalidRequest(f"two {what} for participant {index}")
        result[index] = item
    return result


def _advert_from_peer(p: pb.PeerKeys) -> Advert:
    return Advert(
        bounded_blob(p.encryption_public_key, "an encryption public key", MAX_KEY_BYTES),
        bounded_blob(p.masking_public_key, "a masking public key", MAX_KEY_BYTES),
        bounded_blob(p.certificate, "a certificate", MAX_CERTIFICATE_BYTES),
        bounded_blob(p.signature, "a key signature", MAX_SIGNATURE_BYTES),
    )


def peers_from_pb(peers: Sequence[pb.PeerKeys]) -> dict[int, Advert]:
    bounded_count(peers, "key advertisements", MAX_PARTICIPANTS)
    return _by_index(((p.index, _advert_from_peer(p)) for p in peers), "key advertisements")


def signatures_to_pb(signatures: dict[int, bytes]) -> list[pb.SurvivorSignature]:
    return [pb.SurvivorSignature(index=i, signature=s) for i, s in sorted(signatures.items())]


def signatures_from_pb(signatures: Sequence[pb.SurvivorSignature]) -> dict[int, bytes]:
    bounded_count(signatures, "survivor-set signatures", MAX_PARTICIPANTS)
    items = ((item.index, bounded_blob(item.signature, "a survivor-set signature", MAX_SIGNATURE_BYTES)) for item in signatures)
    return _by_index(items, "survivor-set signatures")


def survivors_from_pb(survivors: Sequence[int]) -> frozenset[int]:
    bounded_count(survivors, "survivors", MAX_PARTICIPANTS)
    return frozenset(survivors)


def shares_from_pb(shares: Sequence[pb.EncryptedShare]) -> dict[int, bytes]:
    bounded_count(shares, "shares", MAX_PARTICIPANTS)
    return _by_index(((share.peer, bounded_blob(share.ciphertext, "a share", MAX_SHARE_BYTES)) for share in shares), "shares")


def shares_to_pb(shares: dict[int, bytes]) -> list[pb.EncryptedShare]:
    return [pb.EncryptedShare(peer=peer, ciphertext=box) for peer, box in sorted(shares.items())]
