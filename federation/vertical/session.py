"""One vertical run: its terms, each party's signed advert, and the sealed letters the coordinator carries.

The coordinator proposes `Terms`: which PSI run's shared firms are the
rows, who is the label party, the second compute party and the helper,
which columns each party contributes, the split seed and the training
settings. Every party checks them against its own policy and signs an
advert binding a fresh X25519 key and its row count to the terms' digest.
A party admits the adverts only when every one verifies against an
accepted certificate for exactly the parties named, so a coordinator can
neither add a party, nor hold a key itself, nor tell parties different
terms. From each pair's agreement come two keys: a stream key (the shares
both sides expand) and a transport key that seals every letter. A
letter's sequence number is bound into its seal, and a party takes each
peer's letters in order, once, so the coordinator cannot replay, reorder
or drop a letter without the run stopping.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from federation.errors import CohortRejected, InvalidRequest, ProtocolOrderError
from federation.psi.plan import COORDINATOR
from federation.psi.session import framed
from federation.secagg._crypto import agree, generate_keypair, hkdf, open_sealed, random_bytes, seal
from federation.secagg.cohort import PeerVerifier, Signer
from federation.vertical.logistic import budgets
from federation.vertical.program import Plan
from federation.vertical.reference import Settings

LABEL_TERMS = b"federation/vertical/v1/terms\x00"
LABEL_ADVERT = b"federation/vertical/v1/advert\x00"
INFO_STREAM = b"federation/vertical/v1/stream-key"
INFO_TRANSPORT = b"federation/vertical/v1/transport"


@dataclass(frozen=True)
class Terms:
    """What the coordinator proposes; every party signs over `digest`."""

    run_id: str
    psi_run: str
    purpose: str
    label: str
    compute: str
    helper: str
    columns: Mapping[str, tuple[str, ...]]  # party -> the columns it contributes (the label column is not one)
    target: str
    split_seed: str
    test_fraction: float = 0.3
    validation_fraction: float = 0.15
    learning_rate: float = 2.0
    l2: float = 1e-3
    max_steps: int = 600
    every: int = 5
    patience: int = 4
    inspect_share: float = 0.05  # the label party's k inspections: this share of its labelled test firms

    def __post_init__(self) -> None:
        parties = list(self.columns)
        if COORDINATOR in parties:
            raise InvalidRequest(f"{COORDINATOR!r} is reserved for the coordinator and cannot be a party")
        roles = {"label": self.label, "compute": self.compute, "helper": self.helper}
        if self.alone:
            if set(roles.values()) != {self.label}:
                raise InvalidRequest(f"a run of the label party alone names it in every role, not {roles}")
        elif len(parties) < 3:
            raise InvalidRequest(f"a vertical run needs the label party alone or three or more parties, not {parties}")
        elif len(set(roles.values())) != 3:
            raise InvalidRequest(f"the label party, compute party and helper must be three different parties: {roles}")
        for role, party in roles.items():
            if party not in self.columns:
                raise InvalidRequest(f"the {role} party {party!r} contributes no columns to the run")
        seen: dict[str, str] = {}
        for party, columns in self.columns.items():
            for column in columns:
                if column in seen:
                    raise InvalidRequest(
                        f"column {column!r} is named for both {seen[column]!r} and {party!r}: each column has one owner"
                    )
                seen[column] = party
            if not columns and party != self.label:
                raise InvalidRequest(f"{party!r} contributes no columns")
        if self.target in seen:
            raise InvalidRequest(f"the target {self.target!r} is also named as a feature of {seen[self.target]!r}")
        if not (
            0 < self.learning_rate
            and 0 <= self.l2
            and 1 <= self.max_steps <= 100_000
            and 1 <= self.every
            and 1 <= self.patience
            and 0 < self.inspect_share <= 1
        ):
            raise InvalidRequest(
                "the training settings are out of range (learning rate > 0, l2 >= 0, 1 <= max steps <= 100000, "
                "0 < inspect share <= 1)"
            )

    @property
    def parties(self) -> tuple[str, ...]:
        return tuple(sorted(self.columns))

    @property
    def alone(self) -> bool:
        """The label party on its own columns (the local-only baseline): trained in float, nothing is shared."""
        return list(self.columns) == [self.label]

    def widths(self) -> dict[str, int]:
        """Columns per party; the label party also holds the intercept."""
        return {p: len(self.columns[p]) + (p == self.label) for p in self.parties}

    def plan(self) -> Plan:
        widths = self.widths()
        return Plan(
            owners=self.parties,
            label=self.label,
            compute=self.compute,
            helper=self.helper,
            widths=widths,
            budgets=budgets(widths),
            learning_rate=self.learning_rate,
            l2=self.l2,
            max_steps=self.max_steps,
            every=self.every,
            patience=self.patience,
        )

    def settings(self) -> Settings:
        return Settings(self.learning_rate, self.l2, self.max_steps, self.every, self.patience)

    def role(self, party: str) -> str:
        if party == self.label:
            return "label party"
        return {self.compute: "compute party", self.helper: "helper"}.get(party, "input party")

    def to_json(self) -> str:
        body = {k: getattr(self, k) for k in self.__dataclass_fields__}
        body["columns"] = {p: list(self.columns[p]) for p in self.parties}
        return json.dumps(body, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Terms:
        try:
            body = json.loads(text)
            body["columns"] = {str(p): tuple(str(c) for c in cs) for p, cs in dict(body["columns"]).items()}
            return cls(**body)
        except InvalidRequest:
            raise
        except (ValueError, TypeError, KeyError) as error:
            raise InvalidRequest(f"the vertical terms do not parse: {error}") from None

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(LABEL_TERMS + self.to_json().encode()).digest()


@dataclass(frozen=True)
class Advert:
    """One party's key for this run and the number of shared firms it aligned, signed under the terms."""

    party: str
    public: bytes
    rows: int
    certificate: bytes
    signature: bytes

    def message(self, terms_digest: bytes) -> bytes:
        return LABEL_ADVERT + framed(terms_digest, self.party.encode(), self.public, self.rows.to_bytes(8, "big"))


@dataclass(frozen=True)
class Letter:
    """Sealed mail from one party to another; the coordinator sees who, the order and the size, never the content."""

    sender: str
    recipient: str
    sequence: int
    sealed: bytes


@dataclass(frozen=True)
class Piece:
    """A letter, or one piece of a large one, as it travels (the coordinator carries pieces without opening them)."""

    sender: str
    recipient: str
    sequence: int
    piece: int
    pieces: int
    data: bytes


@dataclass
class Keyring:
    """A party's keys for one run: its advert, and after admission a stream and a transport key per peer."""

    terms: Terms
    name: str
    rows: int
    signer: Signer
    advert: Advert = field(init=False)
    streams: dict[str, bytes] = field(default_factory=dict)
    secret: bytes = field(default_factory=lambda: random_bytes(32))
    _transport: dict[str, bytes] = field(default_factory=dict)
    _private: bytes = b""
    _sent: dict[str, int] = field(default_factory=dict)
    _taken: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in self.terms.columns:
            raise InvalidRequest(f"{self.name!r} is not a party of vertical run {self.terms.run_id!r}")
        self._private, public = generate_keypair()
        unsigned = Advert(self.name, public, self.rows, self.signer.certificate, b"")
        self.advert = replace(unsigned, signature=self.signer.sign(unsigned.message(self.terms.digest)))

    def admit(self, adverts: Mapping[str, Advert], peers: PeerVerifier) -> None:
        if self._transport:
            raise ProtocolOrderError("this run's adverts were already admitted")
        if sorted(adverts) != list(self.terms.parties):
            raise CohortRejected(f"the adverts are from {sorted(adverts)}, not the run's parties {list(self.terms.parties)}")
        if adverts[self.name] != self.advert:
            raise CohortRejected(f"the advert relayed for {self.name!r} is not the one it signed")
        digest = self.terms.digest
        for name, advert in adverts.items():
            if advert.party != name:
                raise CohortRejected(f"the advert filed under {name!r} is {advert.party!r}'s")
            if name != self.name:
                peers.verify(name, advert.certificate, advert.message(digest), advert.signature)
            if advert.rows != self.rows:
                raise CohortRejected(f"{name!r} aligned {advert.rows} shared firms, {self.name!r} {self.rows}: not the same rows")
        for name, advert in adverts.items():
            if name != self.name:
                secret = agree(self._private, advert.public)
                self.streams[name] = hkdf(secret, info=INFO_STREAM, salt=digest)
                self._transport[name] = hkdf(secret, info=INFO_TRANSPORT, salt=digest)

    def seal(self, recipient: str, payload: bytes) -> Letter:
        sequence = self._sent.get(recipient, 0)
        self._sent[recipient] = sequence + 1
        data = seal(self._key(recipient), payload, associated_data=self._context(self.name, recipient, sequence))
        return Letter(self.name, recipient, sequence, data)

    def open(self, letter: Letter) -> bytes:
        """The payload of the next letter from `letter.sender`; any other (a replay, a gap, a forgery) stops the run."""
        if letter.recipient != self.name:
            raise InvalidRequest(f"a letter for {letter.recipient[:64]!r} was delivered to {self.name!r}")
        expected = self._taken.get(letter.sender, 0)
        if letter.sequence != expected:
            raise InvalidRequest(f"{letter.sender}'s letter {letter.sequence} arrived where letter {expected} was due")
        try:
            payload = open_sealed(
                self._key(letter.sender), letter.sealed, associated_data=self._context(letter.sender, self.name, letter.sequence)
            )
        except InvalidRequest as error:
            raise InvalidRequest(
                f"{letter.sender}'s letter {letter.sequence} does not authenticate for this run: {error}"
            ) from None
        self._taken[letter.sender] = expected + 1
        return payload

    def _key(self, peer: str) -> bytes:
        key = self._transport.get(peer)
        if key is None:
            raise InvalidRequest(f"{peer[:64]!r} is not an admitted party of vertical run {self.terms.run_id!r}")
        return key

    def _context(self, sender: str, recipient: str, sequence: int) -> bytes:
        return framed(self.terms.digest, sender.encode(), recipient.encode(), sequence.to_bytes(8, "big"))
