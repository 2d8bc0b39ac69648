"""Programmed tables for multi-party PSI: a sender's hint that evaluates to a chosen value at its own keys only.

An oblivious programmable PRF (Kolesnikov, Matania, Pinkas, Rosulek and
Trieu 2017) in its polynomial form. The sender knows, for each of its keys
y, a pseudorandom point t(y) (its OPRF output, which the receiver can obtain
only for keys the receiver holds) and a value z(y) it wants the receiver to
see there. It hashes each t into one of about n/8 bins and, per bin, sends
a random polynomial over GF(2^127 - 1) through its (t, z) pairs, of the
same degree in every bin, so the table shows nothing
but the sender's set size. At a t the sender did not program, the polynomial
gives a value the receiver cannot tell from random.

Pure arithmetic on Python integers; a bin holds about 8 keys, so
interpolation is cheap (O(capacity^2) per bin).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence

from federation.errors import InvalidRequest

PRIME = (1 << 127) - 1  # a Mersenne prime: field elements fit in 16 bytes
ELEMENT = 16
LOAD = 8  # average keys per bin
OVERFLOW_BITS = 40  # a table whose fullest bin overflows is this unlikely


def to_field(value: bytes) -> int:
    """An element from the first 16 bytes of a hash output (bias below 2^-126)."""
    return int.from_bytes(value[:ELEMENT], "big") % PRIME


def bin_count(n: int) -> int:
    return max(1, math.ceil(n / LOAD))


def capacity(n: int) -> int:
    """Keys a bin must fit: the smallest d with bins * P(Poisson(n / bins) > d) below 2^-40."""
    bins = bin_count(n)
    rate = n / bins
    if rate == 0:
        return 1
    for d in range(1, n):
        term, tail = math.exp(-rate), 0.0
        for k in range(1, d + 200):
            term *= rate / k
            if k > d:
                tail += term
        if bins * tail < 2.0**-OVERFLOW_BITS:
            return d
    return n  # no bin can hold more keys than there are


def bin_of(t: int, bins: int) -> int:
    """The bin of a programmed point: its top bits, independent of the field value used inside the bin."""
    return (t >> 64) % bins


def _master(xs: Sequence[int]) -> list[int]:
    """prod (X - x_k), constant first."""
    master = [1]
    for x in xs:
        shifted = [0, *master]
        for i, c in enumerate(master):
            shifted[i] = (shifted[i] - x * c) % PRIME
        master = shifted
    return master


def _interpolate(xs: Sequence[int], ys: Sequence[int], master: Sequence[int]) -> list[int]:
    """Coefficients (constant first) of the polynomial of degree len(xs) - 1 through the points."""
    out = [0] * len(xs)
    for x, y in zip(xs, ys, strict=True):
        quotient = [0] * len(xs)  # master / (X - x), by synthetic division from the top
        carry = 0
        for i in range(len(xs), 0, -1):
            carry = (master[i] + carry * x) % PRIME
            quotient[i - 1] = carry
        weight = y * pow(evaluate_polynomial(quotient, x), -1, PRIME) % PRIME
        for i, c in enumerate(quotient):
            out[i] = (out[i] + weight * c) % PRIME
    return out


def _programmed(xs: Sequence[int], ys: Sequence[int], width: int) -> list[int]:
    """A uniformly random polynomial of `width` coefficients through the points: L(X) + M(X) * R(X).

    L interpolates the points, M vanishes on them and R is random of degree
    width - 1 - len(xs): the same distribution as interpolating through random
    padding points, in O(len(xs) * width) instead of O(width^2).
    """
    master = _master(xs)
    out = _interpolate(xs, ys, master) + [0] * (width - len(xs))
    for j in range(width - len(xs)):
        r = secrets.randbelow(PRIME)
        for i, c in enumerate(master):
            out[i + j] = (out[i + j] + r * c) % PRIME
    return out


def evaluate_polynomial(coefficients: Sequence[int], x: int) -> int:
    value = 0
    for c in reversed(coefficients):
        value = (value * x + c) % PRIME
    return value


class Table:
    """Per-bin polynomials of one degree: what a sender sends, and what the receiver evaluates."""

    def __init__(self, bins: int, degree_plus_one: int, coefficients: list[list[int]]) -> None:
        if bins < 1 or degree_plus_one < 1 or len(coefficients) != bins or any(len(c) != degree_plus_one for c in coefficients):
            raise InvalidRequest("a programmed table's shape does not match its header")
        self.bins = bins
        self.width = degree_plus_one
        self._coefficients = coefficients

    @classmethod
    def program(cls, points: Sequence[tuple[int, int]]) -> Table:
        """The table through (t, z) for each point; t must be distinct, and both in the field."""
        bins, width = bin_count(len(points)), capacity(len(points))
        grouped: list[list[tuple[int, int]]] = [[] for _ in range(bins)]
        for t, z in points:
            grouped[bin_of(t, bins)].append((t, z))
        if max(len(g) for g in grouped) > width:  # probability below 2^-40
            raise InvalidRequest("a PSI table bin overflowed (probability below 2^-40); start the run again")
        coefficients = []
        for group in grouped:
            xs = [t for t, _ in group]
            if len(set(xs)) != len(xs):
                raise InvalidRequest("two keys gave the same PSI table point; their keys were not distinct")
            coefficients.append(_programmed(xs, [z for _, z in group], width))
        return cls(bins, width, coefficients)

    def __call__(self, t: int) -> int:
        return evaluate_polynomial(self._coefficients[bin_of(t, self.bins)], t)

    def pack(self) -> bytes:
        header = self.bins.to_bytes(4, "big") + self.width.to_bytes(4, "big")
        return header + b"".join(c.to_bytes(ELEMENT, "big") for row in self._coefficients for c in row)

    @classmethod
    def unpack(cls, blob: bytes, *, expected_keys: int) -> Table:
        """A table from the wire, checked against the sender's advertised set size (so it cannot hide more keys)."""
        if len(blob) < 8:
            raise InvalidRequest("a PSI table is shorter than its header")
        bins, width = int.from_bytes(blob[:4], "big"), int.from_bytes(blob[4:8], "big")
        if (bins, width) != (bin_count(expected_keys), capacity(expected_keys)):
            raise InvalidRequest(f"a PSI table of {bins} bins x {width} does not fit the advertised {expected_keys} keys")
        body = blob[8:]
        if len(body) != bins * width * ELEMENT:
            size = bins * width * ELEMENT
            raise InvalidRequest(f"a PSI table of {bins} bins x {width} should have {size} bytes, not {len(body)}")
        values = [int.from_bytes(body[i : i + ELEMENT], "big") for i in range(0, len(body), ELEMENT)]
        if any(v >= PRIME for v in values):
            raise InvalidRequest("a PSI table coefficient is outside the field")
        return cls(bins, width, [values[b * width : (b + 1) * width] for b in range(bins)])
