"""Shamir secret sharing of 256-bit secrets over the prime field GF(2^521 - 1).

The field is larger than any secret, so a secret is one field element and
reconstruction is exact. Any `threshold` shares give the secret back; fewer
reveal nothing about it (every value is equally likely).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from federation.errors import InvalidRequest

PRIME = 2**521 - 1
SECRET_BYTES = 32
SHARE_BYTES = 66  # ceil(521 / 8)


def split(secret: bytes, *, threshold: int, holders: list[int]) -> dict[int, bytes]:
    """Shares of `secret` for each holder x (x >= 1), any `threshold` of which reconstruct it."""
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"secrets are {SECRET_BYTES} bytes")
    if not 1 <= threshold <= len(holders):
        raise ValueError(f"threshold {threshold} needs 1..{len(holders)} holders")
    if len(set(holders)) != len(holders) or any(not 0 < x < PRIME for x in holders):
        raise ValueError("holders must be distinct positive field elements")
    coefficients = [int.from_bytes(secret, "big")] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    shares = {}
    for x in holders:
        value = 0
        for coefficient in reversed(coefficients):  # Horner's rule
            value = (value * x + coefficient) % PRIME
        shares[x] = value.to_bytes(SHARE_BYTES, "big")
    return shares


def combine(shares: Mapping[int, bytes], *, threshold: int) -> bytes:
    """Lagrange interpolation at 0 from at least `threshold` shares."""
    if len(shares) < threshold:
        raise InvalidRequest(f"{len(shares)} shares cannot reconstruct a secret shared with threshold {threshold}")
    if any(not 0 < x < PRIME for x in shares):
        raise InvalidRequest("a Shamir share names a holder outside the field")
    points = list(shares.items())[:threshold]
    secret = 0
    for i, (x_i, share) in enumerate(points):
        y_i = int.from_bytes(share, "big")
        if len(share) != SHARE_BYTES or y_i >= PRIME:
            raise InvalidRequest("a malformed Shamir share")
        numerator, denominator = 1, 1
        for j, (x_j, _) in enumerate(points):
            if i != j:
                numerator = numerator * (-x_j) % PRIME
                denominator = denominator * (x_i - x_j) % PRIME
        secret = (secret + y_i * numerator * pow(denominator, -1, PRIME)) % PRIME
    if secret >= 2 ** (8 * SECRET_BYTES):
        raise InvalidRequest("the shares do not belong to one secret")
    return secret.to_bytes(SECRET_BYTES, "big")
