"""Our own frozen vectors: every value below was computed once with the code as it stood and pasted in.

They exist so that any change of the mask PRG (cipher, nonce, counter,
byte order), of a HKDF label, of the session-id encoding, of the X25519
agreement or of the SecAgg+ graph derivation makes a test fail. Nodes
running two builds must derive identical masks and graphs, or the masks no
longer cancel and every round with mixed versions silently aborts or is
wrong. If a change is intended, it is a protocol change: bump the `v1` in
the labels, then recompute and re-freeze these values in the same commit.

The uint32 values assume a little-endian host (x86-64, AArch64), as the
masks themselves do: `keystream_into` writes bytes into a native uint32 view.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from federation.secagg import _crypto, graph, masking
from federation.secagg.config import session_id

pytestmark = pytest.mark.skipif(sys.byteorder != "little", reason="frozen uint32 words are little-endian")

h = bytes.fromhex

SESSION = h("228e61bcb381c7e267d20b8d1c142ca43ba9dc50e3a2ed78a1c9c18f646db5cd")
PRIVATE_A = bytes(range(1, 33))
PRIVATE_B = bytes(range(33, 65))


def public(private: bytes) -> bytes:
    key = X25519PrivateKey.from_private_bytes(private).public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def first_words(seed: bytes) -> list[int]:
    """The first mask words of the PRG in use (AES-256-CTR since it measured faster than ChaCha20)."""
    return _crypto.keystream_into(seed, np.empty(8, dtype=np.uint32)).tolist()


def test_frozen_keystream_of_seed_0_to_31() -> None:
    assert first_words(bytes(range(32))) == [
        3053490418,
        3500099882,
        1788539817,
        2155294429,
        2926992880,
        3852450122,
        832304806,
        1026998856,
    ]


def test_frozen_session_id() -> None:
    # SHA-256 of b"federation/secagg/v1/session\x00" followed by the length-prefixed (4-byte
    # big-endian) fields run_id, str(round), payload, terms (here empty), then each participant. SESSION above stays
    # the fixed salt of the derivations below.
    assert session_id("frozen-run", 7, ("node-a", "node-b", "node-c"), payload="update") == h(
        "1d496a19175f7f10a7c5f2fd94b4c051bb2901d6050579de94176be3c811298d"
    )


def test_frozen_session_id_binds_the_payload() -> None:
    assert session_id("frozen-run", 7, ("node-a", "node-b", "node-c"), payload="stats") == h(
        "370fd564c98e158991026b7dfc306c928a06f23712c39e91154832e6ecb5431a"
    )
    ids = {session_id("frozen-run", 7, ("node-a", "node-b", "node-c"), payload=p) for p in ("update", "stats", "eval")}
    assert len(ids) == 3


def test_frozen_session_id_binds_the_announced_terms() -> None:
    """The coordinator's identity and round parameters: nodes told different terms never share a session."""
    terms = "caller=city-platform"
    assert session_id("frozen-run", 7, ("node-a", "node-b", "node-c"), payload="update", terms=terms) == h(
        "cbe81c5f7e48f1bb0f355b74a0da949e2491e2e2987017ab5ce4295c0b4a383a"
    )


def test_frozen_self_mask_seed_and_mask() -> None:
    seed = masking.self_mask_seed(bytes(range(32)), SESSION)
    assert seed == h("5c5250ed3d420cd07f912b449be3bf77e96c678c696f7116bbe127ed4a41e373")
    assert first_words(seed) == [1317164597, 3927591101, 3325868055, 3790505267, 1493797386, 1756925171, 580027684, 1820154357]


def test_frozen_x25519_public_keys() -> None:
    assert public(PRIVATE_A) == h("07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c")
    assert public(PRIVATE_B) == h("5869aff450549732cbaaed5e5df9b30a6da31cb0e5742bad5ad4a1a768f1a67b")


def test_frozen_pairwise_seed_and_mask_from_both_ends() -> None:
    expected = h("696b49b6ceb13efe31c7256a25eb197a7705bbfde2b35b4116801ee9a3484892")
    assert masking.pairwise_seed(PRIVATE_A, public(PRIVATE_B), SESSION) == expected
    assert masking.pairwise_seed(PRIVATE_B, public(PRIVATE_A), SESSION) == expected
    assert first_words(expected) == [
        1142447737,
        3491815601,
        3266099673,
        1083147902,
        3968016433,
        3450558861,
        3520287500,
        2735275640,
    ]


def test_frozen_share_encryption_key() -> None:
    assert masking.share_key(PRIVATE_A, public(PRIVATE_B), SESSION) == h(
        "f80dbe4603d49de95ff145b76244f52b432af99aaee1d8c36cd69cf9604b615c"
    )


def test_frozen_share_binding_layout() -> None:
    assert masking.share_binding(SESSION, 3, 258) == SESSION + h("00000003") + h("00000102")


def test_frozen_secagg_plus_graph() -> None:
    """The permutation sorts SHA-256 hashes of (label, seed, index), so every party computes the
    same graph whatever numpy it runs; this catches any change to that construction."""
    assert [sorted(n) for n in graph.neighbours(12, degree=4, seed=SESSION)] == [
        [4, 5, 6, 9],
        [3, 8, 10, 11],
        [3, 4, 5, 8],
        [1, 2, 8, 10],
        [0, 2, 5, 8],
        [0, 2, 4, 9],
        [0, 7, 9, 11],
        [6, 9, 10, 11],
        [1, 2, 3, 4],
        [0, 5, 6, 7],
        [1, 3, 7, 11],
        [1, 6, 7, 10],
    ]
