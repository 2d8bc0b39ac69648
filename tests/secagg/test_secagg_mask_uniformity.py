"""A single masked update looks uniform: what the coordinator sees of one node says nothing about its input.

Chi-square goodness of fit over 256 bins, once over every byte of the
masked vector and once over the top 8 bits of each uint32 word (where a
fixed-point update concentrates). The rejection threshold is set from a
Chernoff bound on the chi-square tail, so a truly uniform vector fails with
probability below 1e-6; the negative control shows the same statistic and
threshold reject the unmasked encoded update, so the test can fail.

On reproducibility: the masks come from fresh X25519 keys and os.urandom
secrets, so the masked vector differs on every run and cannot be seeded
without patching the crypto. That is acceptable here because the outcome
does not depend on the draw in practice: a correct implementation fails
with probability < 1e-6 per assertion (a false alarm every few million
runs), while a defect that leaves visible structure (a missing or reused
mask, a short keystream, a mask added to only part of the vector) yields a
statistic orders of magnitude above the threshold on every run.
"""

from __future__ import annotations

import math
import os

import numpy as np

from federation.secagg.config import SecAggConfig, session_id
from federation.secagg.local import local_clients
from federation.secagg.quantize import Quantizer
from federation.secagg.server import SecAggServer

LENGTH = 1 << 18  # 1 MiB of masked vector: about 4096 bytes per bin
BINS = 256
FALSE_ALARM = 1e-6


def chi_square_threshold(df: int, p: float) -> float:
    """The x at which the Chernoff bound P(X >= x) <= (x/df)^(df/2) exp((df - x)/2) equals p."""

    def log_bound(x: float) -> float:
        return df / 2 * math.log(x / df) + (df - x) / 2

    low, high = float(df), 10.0 * df
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if log_bound(middle) > math.log(p) else (low, middle)
    return high


THRESHOLD = chi_square_threshold(BINS - 1, FALSE_ALARM)


def chi_square(values: np.ndarray) -> float:
    counts = np.bincount(values.astype(np.int64), minlength=BINS)
    expected = len(values) / BINS
    return float(((counts - expected) ** 2 / expected).sum())


def byte_statistic(vector: np.ndarray) -> float:
    return chi_square(vector.view(np.uint8))


def top_bits_statistic(vector: np.ndarray) -> float:
    return chi_square(vector >> 24)


def masked_update_of(encoded: np.ndarray) -> np.ndarray:
    """Node 0's masked update in a real three-node round (self mask plus two pairwise masks)."""
    participants = ("node-0", "node-1", "node-2")
    config = SecAggConfig(
        session=session_id("uniformity", 1, participants, payload="update"),
        participants=participants,
        threshold=2,
        degree=None,
        clip=1.0,
        vector_length=LENGTH,
    )
    clients = local_clients(config)
    server = SecAggServer(config)
    adverts = server.collect_keys({i: c.advertise() for i, c in clients.items()})
    routed = server.route_shares({i: c.share_keys(adverts) for i, c in clients.items()})
    return clients[0].masked_input(encoded, routed[0])


def realistic_encoded_update() -> np.ndarray:
    rng = np.random.default_rng(11)
    return Quantizer(1.0, 3).encode(rng.normal(0.0, 0.05, LENGTH), rng)


def test_threshold_is_a_far_tail_of_chi_square_255() -> None:
    """About 383 for 255 degrees of freedom: mean 255, standard deviation 22.6, so over 5 sigma."""
    assert 255 + 5 * math.sqrt(2 * 255) < THRESHOLD < 255 + 7 * math.sqrt(2 * 255)


def test_masked_all_zero_input_is_indistinguishable_from_uniform() -> None:
    masked = masked_update_of(np.zeros(LENGTH, dtype=np.uint32))
    assert byte_statistic(masked) < THRESHOLD
    assert top_bits_statistic(masked) < THRESHOLD


def test_masked_realistic_update_is_indistinguishable_from_uniform() -> None:
    masked = masked_update_of(realistic_encoded_update())
    assert byte_statistic(masked) < THRESHOLD
    assert top_bits_statistic(masked) < THRESHOLD


def test_negative_control_the_unmasked_update_is_rejected() -> None:
    encoded = realistic_encoded_update()
    assert byte_statistic(encoded) > THRESHOLD
    assert top_bits_statistic(encoded) > THRESHOLD
    assert top_bits_statistic(np.zeros(LENGTH, dtype=np.uint32)) > THRESHOLD


def test_negative_control_a_half_masked_vector_is_rejected() -> None:
    """A subtler defect: masks applied to only half the words still leaves the other half visible."""
    masked = masked_update_of(np.zeros(LENGTH, dtype=np.uint32))
    masked[: LENGTH // 2] = realistic_encoded_update()[: LENGTH // 2]
    assert top_bits_statistic(masked) > THRESHOLD


def test_positive_control_os_urandom_passes() -> None:
    uniform = np.frombuffer(os.urandom(4 * LENGTH), dtype=np.uint32)
    assert byte_statistic(uniform) < THRESHOLD
    assert top_bits_statistic(uniform) < THRESHOLD
