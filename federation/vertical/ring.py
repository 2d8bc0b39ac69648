"""Fixed-point numbers as two additive shares modulo 2^64, and the streams that draw them.

A value x is encoded as round(x * 2^f) in Z_2^64 (two's complement, numpy
uint64, whose arithmetic wraps exactly as the ring needs) and split into
[x]_0 + [x]_1 = x. Either share alone is uniform and says nothing about x.
Shares and masks are expanded from 256-bit seeds with ChaCha20
(`secagg._crypto`), each seed derived with HKDF for one labelled use, so no
keystream is ever used twice; the party that holds a pairwise key with
another can thus give it a share without sending it.
"""

from __future__ import annotations

import numpy as np

from federation.secagg._crypto import chacha20_keystream_into, hkdf

FRACTION = 20  # fractional bits of a fixed-point value
RING = np.uint64


def encode(values: np.ndarray, *, fraction: int = FRACTION) -> np.ndarray:
    """round(x * 2^fraction) in the ring; |x| must stay well inside 2^(63 - fraction)."""
    scaled = np.rint(np.asarray(values, dtype=np.float64) * float(1 << fraction))
    if not np.all(np.isfinite(scaled)) or np.any(np.abs(scaled) >= 2.0**62):
        raise ValueError("a value is too large (or not finite) for the fixed-point ring")
    return scaled.astype(np.int64).view(RING)


def decode(values: np.ndarray, *, fraction: int = FRACTION) -> np.ndarray:
    return np.asarray(values, dtype=RING).view(np.int64).astype(np.float64) / float(1 << fraction)


def stream(key: bytes, label: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform ring elements from a pairwise key, for one labelled use (the label says which value, step and party)."""
    out = np.empty(shape, dtype=RING)
    return chacha20_keystream_into(hkdf(key, info=b"federation/vertical/v1/stream\x00" + label, salt=None), out)


def split(value: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([x]_0, [x]_1) with [x]_0 = `first` (uniform, e.g. a stream both sides can expand)."""
    return first, value - first


def join(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    return np.asarray(first + second, dtype=RING)
