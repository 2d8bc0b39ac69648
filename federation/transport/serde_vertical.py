"""Vertical training's wire messages: terms, adverts and sealed letter pieces, bounded before the protocol sees them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from federation.errors import InvalidRequest
from federation.proto.v1 import node_pb2 as pb
from federation.transport.bounds import bounded_blob, bounded_count, bounded_name
from federation.transport.serde_secagg import MAX_CERTIFICATE_BYTES, MAX_KEY_BYTES, MAX_PARTY_NAME, MAX_SIGNATURE_BYTES
from federation.vertical.session import Advert, Piece, Terms

MAX_PARTIES = 64
MAX_TERMS_BYTES = 64 << 10
MAX_PIECE_BYTES = (1 << 20) + 64  # a piece of a sealed letter (node.vertical_handlers.PIECE_BYTES)
MAX_PIECES = 256  # per request; the server's 4 MiB message limit bounds their bytes
MAX_ROWS = 1 << 32


def terms_from_pb(text: str, run_id: str, purpose: str) -> Terms:
    if len(text) > MAX_TERMS_BYTES:
        raise InvalidRequest(f"vertical terms of {len(text)} characters are longer than {MAX_TERMS_BYTES}")
    terms = Terms.from_json(text)
    if terms.run_id != run_id or terms.purpose != purpose:
        raise InvalidRequest("the vertical terms are for another run or purpose than the call")
    if len(terms.columns) > MAX_PARTIES:
        raise InvalidRequest(f"a vertical run of {len(terms.columns)} parties is more than {MAX_PARTIES}")
    for party in terms.columns:
        bounded_name(party, "a party", limit=MAX_PARTY_NAME)
    return terms


def advert_to_pb(advert: Advert) -> pb.VerticalAdvert:
    return pb.VerticalAdvert(
        party=advert.party, public_key=advert.public, rows=advert.rows, certificate=advert.certificate, signature=advert.signature
    )


def advert_from_pb(message: pb.VerticalAdvert) -> Advert:
    if message.rows > MAX_ROWS:
        raise InvalidRequest("a vertical advert's row count is out of range")
    return Advert(
        party=bounded_name(message.party, "an advert's party", limit=MAX_PARTY_NAME),
        public=bounded_blob(message.public_key, "an advert's key", MAX_KEY_BYTES),
        rows=message.rows,
        certificate=bounded_blob(message.certificate, "an advert's certificate", MAX_CERTIFICATE_BYTES),
        signature=bounded_blob(message.signature, "an advert's signature", MAX_SIGNATURE_BYTES),
    )


def adverts_from_pb(messages: Iterable[pb.VerticalAdvert]) -> dict[str, Advert]:
    items = list(messages)
    bounded_count(items, "vertical adverts", MAX_PARTIES)
    adverts: dict[str, Advert] = {}
    for message in items:
        advert = advert_from_pb(message)
        if advert.party in adverts:
            raise InvalidRequest(f"two vertical adverts for {advert.party!r}")
        adverts[advert.party] = advert
    return adverts


def pieces_to_pb(pieces: Sequence[Piece]) -> list[pb.VerticalLetter]:
    return [
        pb.VerticalLetter(
            sender=p.sender, recipient=p.recipient, sequence=p.sequence, piece=p.piece, pieces=p.pieces, data=p.data
        )
        for p in pieces
    ]


def pieces_from_pb(messages: Iterable[pb.VerticalLetter]) -> list[Piece]:
    items = list(messages)
    bounded_count(items, "letter pieces", MAX_PIECES)
    return [
        Piece(
            sender=bounded_name(m.sender, "a letter's sender", limit=MAX_PARTY_NAME),
            recipient=bounded_name(m.recipient, "a letter's recipient", limit=MAX_PARTY_NAME),
            sequence=m.sequence,
            piece=m.piece,
            pieces=m.pieces,
            data=bounded_blob(m.data, "a letter piece", MAX_PIECE_BYTES),
        )
        for m in items
    ]
