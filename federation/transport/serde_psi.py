"""PSI's wire messages: terms, adverts and sealed messages, bounded before the protocol sees them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from federation.errors import InvalidRequest
from federation.proto.v1 import node_pb2 as pb
from federation.psi.plan import Disclosure
from federation.psi.session import Advert, Terms
from federation.transport.bounds import bounded_blob, bounded_count, bounded_name, bounded_names
from federation.transport.serde_secagg import MAX_CERTIFICATE_BYTES, MAX_KEY_BYTES, MAX_PARTY_NAME, MAX_SIGNATURE_BYTES

MAX_PARTIES = 64  # of a PSI run: every message between a receiver and each sender goes through one node
MAX_SEALED_BYTES = 4 << 20  # the server's message limit; a sealed message of 30,000 keys fits
MAX_SET_SIZE = 1 << 40


def terms_to_pb(terms: Terms) -> pb.PsiTerms:
    return pb.PsiTerms(
        parties=list(terms.parties),
        receiver=terms.receiver,
        rule=terms.rule,
        membership=list(terms.disclosure.membership),
        count=list(terms.disclosure.count),
    )


def terms_from_pb(message: pb.PsiTerms, run_id: str, purpose: str) -> Terms:
    parties = bounded_names(message.parties, "parties", count=MAX_PARTIES, limit=MAX_PARTY_NAME)
    membership = bounded_names(message.membership, "membership parties", count=MAX_PARTIES, limit=MAX_PARTY_NAME)
    count = bounded_names(message.count, "count parties", count=MAX_PARTIES + 1, limit=MAX_PARTY_NAME)
    receiver = bounded_name(message.receiver, "the receiver", limit=MAX_PARTY_NAME)
    rule = bounded_name(message.rule, "the key rule")
    return Terms(run_id, parties, receiver, rule, Disclosure(membership, count), purpose=purpose)


def advert_to_pb(advert: Advert) -> pb.PsiAdvert:
    return pb.PsiAdvert(
        party=advert.party,
        public_key=advert.public,
        set_size=advert.set_size,
        min_intersection=advert.min_intersection,
        certificate=advert.certificate,
        signature=advert.signature,
    )


def advert_from_pb(message: pb.PsiAdvert) -> Advert:
    if message.set_size > MAX_SET_SIZE or message.min_intersection > MAX_SET_SIZE:
        raise InvalidRequest("a PSI advert's set size or minimum is out of range")
    return Advert(
        party=bounded_name(message.party, "an advert's party", limit=MAX_PARTY_NAME),
        public=bounded_blob(message.public_key, "an advert's key", MAX_KEY_BYTES),
        set_size=message.set_size,
        min_intersection=message.min_intersection,
        certificate=bounded_blob(message.certificate, "an advert's certificate", MAX_CERTIFICATE_BYTES),
        signature=bounded_blob(message.signature, "an advert's signature", MAX_SIGNATURE_BYTES),
    )


def adverts_from_pb(messages: Iterable[pb.PsiAdvert]) -> dict[str, Advert]:
    items = list(messages)
    bounded_count(items, "PSI adverts", MAX_PARTIES)
    adverts = {}
    for message in items:
        advert = advert_from_pb(message)
        if advert.party in adverts:
            raise InvalidRequest(f"two PSI adverts for {advert.party!r}")
        adverts[advert.party] = advert
    return adverts


def sealed_to_pb(by_party: Mapping[str, bytes]) -> list[pb.PsiSealed]:
    return [pb.PsiSealed(party=party, sealed=sealed) for party, sealed in sorted(by_party.items())]


def sealed_from_pb(message: pb.PsiSealed) -> tuple[str, bytes]:
    party = bounded_name(message.party, "a sealed message's party", limit=MAX_PARTY_NAME)
    return party, bounded_blob(message.sealed, "a sealed PSI message", MAX_SEALED_BYTES)


def sealed_map_from_pb(messages: Iterable[pb.PsiSealed]) -> dict[str, bytes]:
    items = list(messages)
    bounded_count(items, "sealed PSI messages", MAX_PARTIES)
    out: dict[str, bytes] = {}
    for message in items:
        party, sealed = sealed_from_pb(message)
        if party in out:
            raise InvalidRequest(f"two sealed PSI messages for {party!r}")
        out[party] = sealed
    return out


MAX_CHUNK_BYTES = 2 << 20  # a sealed chunk of `psi.pair` (1 MiB of points, its nonce and tag)
MAX_CHUNKS = 1 << 20
STEPS = ("own", "answer", "delivery")


def step_from_pb(step: str) -> str:
    if step not in STEPS:
        raise InvalidRequest(f"a PSI step is one of {list(STEPS)}, not {step[:40]!r}")
    return step


def chunk_from_pb(message: pb.PsiChunk) -> tuple[int, int, bytes]:
    if not message.index < message.total <= MAX_CHUNKS:
        raise InvalidRequest(f"a PSI chunk numbered {message.index} of {message.total} (at most {MAX_CHUNKS})")
    return message.index, message.total, bounded_blob(message.sealed, "a sealed PSI chunk", MAX_CHUNK_BYTES)
