"""One multi-party PSI run: its terms, each party's signed advert, and the pairwise keys derived from them.

The coordinator proposes `Terms` (the parties, the receiver, the key rule
and who may learn what). Every party checks them against its own policy,
then signs an advert binding a fresh X25519 key, its set size and its
minimum intersection to the terms' digest. Parties accept the adverts only
when every one verifies against an accepted certificate for exactly the
parties named in the terms, so a coordinator can neither invent a party,
nor substitute a key it holds, nor tell different parties different terms
(their signatures would be over different digests). The digest is also
bound into every key hash, so nothing from one run is of use in another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from federation.errors import CohortRejected, InvalidRequest, ProtocolOrderError
from federation.psi.blind import hash_to_points
from federation.psi.opprf import PRIME, to_field
from federation.psi.plan import COORDINATOR, Disclosure
from federation.secagg._crypto import agree, generate_keypair, hkdf, open_sealed, seal
from federation.secagg.cohort import PeerVerifier, Signer

LABEL_TERMS = b"federation/psi/v1/terms\x00"
LABEL_ADVERT = b"federation/psi/v1/advert\x00"
INFO_ZERO = b"federation/psi/v1/zero-share"
INFO_TRANSPORT = b"federation/psi/v1/transport"


def framed(*fields: bytes) -> bytes:
    return b"".join(len(f).to_bytes(4, "big") + f for f in fields)  # length-prefixed: injective


def _names(names: Sequence[str]) -> bytes:
    return framed(*(n.encode() for n in names))


@dataclass(frozen=True)
class Terms:
    """What the coordinator proposes; every party signs over `digest`, so all must have been told the same."""

    run_id: str
    parties: tuple[str, ...]
    receiver: str
    rule: str
    disclosure: Disclosure
    purpose: str = ""  # bound into the digest: every party consents under the same purpose

    def __post_init__(self) -> None:
        if len(self.parties) < 2 or len(set(self.parties)) != len(self.parties):
            raise InvalidRequest(f"a PSI run needs two or more distinct parties, not {list(self.parties)}")
        if COORDINATOR in self.parties:
            raise InvalidRequest(f"{COORDINATOR!r} is reserved for the coordinator and cannot be a party")
        if self.receiver not in self.parties:
            raise InvalidRequest(f"the receiver {self.receiver!r} is not a party of the run")
        if self.receiver not in self.disclosure.membership:
            raise InvalidRequest(f"the receiver {self.receiver!r} learns which firms are shared, so the disclosure must name it")
        if COORDINATOR in self.disclosure.membership:
            raise InvalidRequest("the coordinator may never learn which firms are shared")
        named = set(self.disclosure.membership) | set(self.disclosure.count)
        unknown = sorted(named - {COORDINATOR} - set(self.parties))
        if unknown:
            raise InvalidRequest(f"the disclosure names {unknown}, which are not parties of the run")

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(
            LABEL_TERMS
            + framed(
                self.run_id.encode(),
                self.purpose.encode(),
                self.rule.encode(),
                self.receiver.encode(),
                _names(sorted(self.parties)),
                _names(sorted(self.disclosure.membership)),
                _names(sorted(self.disclosure.count)),
            )
        ).digest()

    @property
    def senders(self) -> list[str]:
        return sorted(p for p in self.parties if p != self.receiver)

    def learns(self, party: str) -> str:
        """'membership', 'count' or 'nothing': what this run tells `party` about the intersection."""
        if party in self.disclosure.membership:
            return "membership"
        return "count" if party in self.disclosure.count else "nothing"


@dataclass(frozen=True)
class Advert:
    """One party's key for this run, its set size and minimum, signed under the terms."""

    party: str
    public: bytes
    set_size: int
    min_intersection: int
    certificate: bytes
    signature: bytes

    def message(self, terms_digest: bytes) -> bytes:
        return LABEL_ADVERT + framed(
            terms_digest,
            self.party.encode(),
            self.public,
            self.set_size.to_bytes(8, "big"),
            self.min_intersection.to_bytes(8, "big"),
        )


class Party:
    """What every party of a run does: hash its keys for this run, advertise, admit the others, share zero."""

    def __init__(self, terms: Terms, keys: Sequence[str], *, min_intersection: int, signer: Signer) -> None:
        if signer.name not in terms.parties:
            raise InvalidRequest(f"{signer.name!r} is not a party of PSI run {terms.run_id!r}")
        if len(set(keys)) != len(keys):
            raise InvalidRequest("the keys repeat; prepare them with psi.uscc.prepare_keys first")
        self.terms = terms
        self.name = signer.name
        self.keys = list(keys)
        self.digests: list[bytes] = []  # hashed only once every party's advert is admitted
        self._private, public = generate_keypair()
        unsigned = Advert(self.name, public, len(self.keys), min_intersection, signer.certificate, b"")
        self.advert = replace(unsigned, signature=signer.sign(unsigned.message(terms.digest)))
        self.sizes: dict[str, int] = {}
        self.minimum = min_intersection
        self._zero_keys: dict[str, bytes] = {}
        self._transport_keys: dict[str, bytes] = {}

    def admit(self, adverts: Mapping[str, Advert], peers: PeerVerifier) -> None:
        """Accept the run's adverts: exactly the named parties, each signed by an accepted certificate, ours untouched."""
        if self.sizes:
            raise ProtocolOrderError("this run's adverts were already admitted")
        if sorted(adverts) != sorted(self.terms.parties):
            raise CohortRejected(f"the adverts are from {sorted(adverts)}, not the run's parties {sorted(self.terms.parties)}")
        if adverts[self.name] != self.advert:
            raise CohortRejected(f"the advert relayed for {self.name!r} is not the one it signed")
        digest = self.terms.digest
        for name, advert in adverts.items():
            if advert.party != name:
                raise CohortRejected(f"the advert filed under {name!r} is {advert.party!r}'s")
            if name != self.name:
                peers.verify(name, advert.certificate, advert.message(digest), advert.signature)
        self.digests = hash_to_points(self.keys, run_id=digest.hex(), rule=self.terms.rule)
        for name, advert in adverts.items():
            self.sizes[name] = advert.set_size
            self.minimum = max(self.minimum, advert.min_intersection)
            if name == self.name:
                continue
            secret = agree(self._private, advert.public)
            self._zero_keys[name] = hkdf(secret, info=INFO_ZERO, salt=digest)
            self._transport_keys[name] = hkdf(secret, info=INFO_TRANSPORT, salt=digest)

    def zero_shares(self) -> list[int]:
        """z(x) for each own key: summed over all parties, the shares of a key every party holds are 0."""
        if not self._zero_keys:
            raise InvalidRequest("the run's adverts have not been admitted yet")
        shares = [0] * len(self.digests)
        for peer, key in self._zero_keys.items():
            sign = 1 if self.name < peer else PRIME - 1
            for i, d in enumerate(self.digests):
                shares[i] += sign * to_field(hashlib.blake2b(d, key=key, digest_size=16).digest())
        return [s % PRIME for s in shares]

    def seal_for(self, peer: str, kind: str, payload: bytes) -> bytes:
        """Encrypted and authenticated for `peer` alone: the coordinator relays it blind."""
        return seal(self._transport_key(peer), payload, associated_data=self._context(kind, self.name, peer))

    def open_from(self, peer: str, kind: str, sealed: bytes) -> bytes:
        try:
            return open_sealed(self._transport_key(peer), sealed, associated_data=self._context(kind, peer, self.name))
        except InvalidRequest as error:
            raise InvalidRequest(f"the PSI {kind} from {peer!r} does not authenticate for this run: {error}") from None

    def _transport_key(self, peer: str) -> bytes:
        key = self._transport_keys.get(peer)
        if key is None:
            raise InvalidRequest(f"{peer!r} is not an admitted party of PSI run {self.terms.run_id!r}")
        return key

    def _context(self, kind: str, sender: str, recipient: str) -> bytes:
        return framed(self.terms.digest, kind.encode(), sender.encode(), recipient.encode())
