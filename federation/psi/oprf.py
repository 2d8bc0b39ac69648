"""An oblivious PRF on P-256 (2HashDH): a receiver learns F_k(x) for its own keys, the key holder learns nothing.

Why P-256 and not the X25519 of the two-party protocol: the multi-party
protocol needs the receiver to *remove* its blinding (multiply by a^-1 mod
the group order), and X25519's clamped scalars cannot express an arbitrary
scalar. `cryptography`'s ECDH on P-256 multiplies a point by any scalar in
[1, n) through OpenSSL (about 95 us here), and its x-coordinate output is
all the next step needs, because x(k * P) = x(k * -P).

The construction (Jarecki, Kiayias and Krawczyk 2014): for a key's run-bound
digest d, P = H2C(d) (try-and-increment on compressed points, so about two
SHA-256 calls and decompressions per key). The receiver sends a * P for a
fresh scalar a; the key holder returns k * (a * P); the receiver multiplies
by a^-1 to obtain k * P and F_k(x) = SHA-256(domain, x(k * P)). Under the
one-more gap Diffie-Hellman assumption in the random-oracle model, the key
holder sees uniformly random points, and the receiver learns F_k only at
points it blinded. Try-and-increment is not constant-time; its timing depends
only on the receiver's own keys, observed by no one else.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric import ec

from federation.errors import InvalidRequest

CURVE = ec.SECP256R1()
ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
POINT = 32  # bytes of an x-coordinate: the only part of a point that travels
DOMAIN = b"federation/psi/v1/oprf"
_ECDH = ec.ECDH()


def hash_to_curve(digest: bytes) -> ec.EllipticCurvePublicKey:
    """A point with no known discrete logarithm: the first counter whose hash is an x-coordinate."""
    for counter in range(256):
        x = hashlib.sha256(DOMAIN + counter.to_bytes(1, "big") + digest).digest()
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(CURVE, b"\x02" + x)
        except ValueError:  # not on the curve: about half of all x
            continue
    raise InvalidRequest("no curve point for a key digest after 256 tries (probability 2^-256)")


def _point(x: bytes) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(CURVE, b"\x02" + x)
    except ValueError:
        raise InvalidRequest("a value sent for the oblivious PRF is not a P-256 point") from None


def _scalar() -> int:
    return secrets.randbelow(ORDER - 1) + 1


def output(x: bytes) -> bytes:
    """F_k(x) from the x-coordinate of k * H2C(x)."""
    return hashlib.sha256(DOMAIN + b"/output" + x).digest()


class OprfKey:
    """The key holder's secret k for one run: fresh at construction, never written anywhere."""

    def __init__(self) -> None:
        self._key = ec.derive_private_key(_scalar(), CURVE)

    def evaluate(self, blinded: Sequence[bytes]) -> list[bytes]:
        """k * Q for each point the receiver sent, in its order."""
        exchange = self._key.exchange
        return [exchange(_ECDH, _point(q)) for q in blinded]

    def own(self, digests: Sequence[bytes]) -> list[bytes]:
        """F_k at this party's own digests, computed directly."""
        exchange = self._key.exchange
        return [output(exchange(_ECDH, hash_to_curve(d))) for d in digests]


class OprfClient:
    """The receiver's blinding scalar a for one run; a * P hides P completely."""

    def __init__(self, points: Sequence[ec.EllipticCurvePublicKey]) -> None:
        """`points` are `hash_to_curve` of the receiver's digests, hashed once for all senders."""
        scalar = _scalar()
        self._blind = ec.derive_private_key(scalar, CURVE)
        self._unblind = ec.derive_private_key(pow(scalar, -1, ORDER), CURVE)
        exchange = self._blind.exchange
        self.blinded = [exchange(_ECDH, p) for p in points]

    def finish(self, evaluated: Sequence[bytes]) -> list[bytes]:
        """F_k at the receiver's digests, from the key holder's answers in the same order."""
        if len(evaluated) != len(self.blinded):
            raise InvalidRequest(f"{len(evaluated)} oblivious PRF answers for {len(self.blinded)} blinded keys")
        exchange = self._unblind.exchange
        return [output(exchange(_ECDH, _point(e))) for e in evaluated]
