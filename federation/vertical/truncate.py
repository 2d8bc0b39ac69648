"""Dividing a shared fixed-point value by 2^s, exactly, with randomness from a helper.

After a product the scale is 2f; shifting it back to f cannot be done on
shares alone without a chance of a wrong top bit (SecureML's local
truncation fails with probability about 2^(k+1-64) per value, which over
millions of values is dozens of garbage results). Here a helper that sees
nothing of the data draws a uniform r and shares r, (r mod 2^63) >> s and
r's top bit. The two compute parties open c = x + 2^(k-1) + r (uniform, so
it hides x), and each computes its share of floor(x / 2^s) from c with an
error of at most one unit in the last place and no failure:

    x + 2^(k-1) = (c mod 2^63) - (r mod 2^63) + 2^63 w,   w = c_63 xor r_63
    [y] = ((c mod 2^63) >> s) - [r_hat] + 2^(63-s) (c_63 + (1 - 2 c_63) [r_63]) - 2^(k-1-s)

(the public terms are added by party 0 only). Valid for |x| < 2^(k-1), k <= 62.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from federation.vertical.ring import RING

LOW = np.uint64((1 << 63) - 1)


@dataclass(frozen=True)
class TruncationShare:
    """One compute party's share of a helper's truncation pair."""

    r: np.ndarray
    r_hat: np.ndarray
    r_top: np.ndarray


def helper_pair(
    r: np.ndarray, shift: int, first: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[TruncationShare, TruncationShare]:
    """The helper's pair for uniform `r`: party 0's share is `first` (streams it can expand itself), party 1's the rest."""
    r_hat = (r & LOW) >> np.uint64(shift)
    r_top = r >> np.uint64(63)
    zero = TruncationShare(*first)
    one = TruncationShare(r - first[0], r_hat - first[1], r_top - first[2])
    return zero, one


def masked(share: np.ndarray, pair: TruncationShare, *, party: int, bits: int) -> np.ndarray:
    """This party's share of c = x + 2^(bits-1) + r, to be opened to the other compute party."""
    offset = np.uint64(1 << (bits - 1)) if party == 0 else np.uint64(0)
    return np.asarray(share + offset + pair.r, dtype=RING)


def finish(opened: np.ndarray, pair: TruncationShare, *, party: int, bits: int, shift: int) -> np.ndarray:
    """This party's share of x >> shift, from the opened c."""
    top = opened >> np.uint64(63)
    out = (np.uint64(1 << (63 - shift)) * (np.uint64(1) - np.uint64(2) * top)) * pair.r_top - pair.r_hat
    if party == 0:
        public = ((opened & LOW) >> np.uint64(shift)) + np.uint64(1 << (63 - shift)) * top - np.uint64(1 << (bits - 1 - shift))
        out = out + public
    return np.asarray(out, dtype=RING)
