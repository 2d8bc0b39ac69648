"""ChaCha20 (`_crypto.chacha20_keystream_into`, kept beside the AES-256-CTR mask PRG) against RFC 8439.

`chacha20_keystream_into` runs ChaCha20 with `cryptography`'s 16-byte nonce: a 4-byte
little-endian block counter followed by the 96-bit RFC nonce, all zero here.
So its output is the RFC keystream for nonce 0 starting at block counter 0,
and block k of the RFC is bytes [64k, 64k + 64) of our stream. Appendix A.1
vectors #1-#4 all use the zero nonce, with counters 0, 1, 1 and 2, so each is
a 64-byte window of one `chacha20_keystream_into` call. Vector #5 and the section
2.3.2 / 2.4.2 examples use other nonces, which `chacha20_keystream_into` cannot take
(by design: each seed is used once), so they check the primitive through
`cryptography` with the nonce layout above, which is what `chacha20_keystream_into`
relies on.
"""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from federation.secagg import _crypto

h = bytes.fromhex

A1_ZERO_NONCE = [
    pytest.param(
        bytes(32),
        0,
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
        "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586",
        id="A.1#1-counter0",
    ),
    pytest.param(
        bytes(32),
        1,
        "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed"
        "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f",
        id="A.1#2-counter1",
    ),
    pytest.param(
        bytes(31) + b"\x01",
        1,
        "3aeb5224ecf849929b9d828db1ced4dd832025e8018b8160b82284f3c949aa5a"
        "8eca00bbb4a73bdad192b5c42f73f2fd4e273644c8b36125a64addeb006c13a0",
        id="A.1#3-key1-counter1",
    ),
    pytest.param(
        b"\x00\xff" + bytes(30),
        2,
        "72d54dfbf12ec44b362692df94137f328fea8da73990265ec1bbbea1ae9af0ca"
        "13b25aa26cb4a648cb9b9d1be65b2c0924a66c54d545ec1b7374f4872e99f096",
        id="A.1#4-key00ff-counter2",
    ),
]


@pytest.mark.parametrize(("key", "counter", "block"), A1_ZERO_NONCE)
def test_keystream_into_matches_rfc8439_a1(key: bytes, counter: int, block: str) -> None:
    out = np.empty(64 * (counter + 1), dtype=np.uint8)
    returned = _crypto.chacha20_keystream_into(key, out)
    assert returned is out
    assert out[64 * counter :].tobytes() == h(block)


def test_keystream_into_block_0_through_uint32_view() -> None:
    """The masks are uint32 arrays: the same bytes read as little-endian words."""
    words = _crypto.chacha20_keystream_into(bytes(32), np.empty(16, dtype="<u4"))
    expected = np.frombuffer(h(A1_ZERO_NONCE[0].values[2]), dtype="<u4")  # type: ignore[arg-type]
    np.testing.assert_array_equal(words, expected)


def _chacha20(key: bytes, counter: int, nonce: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.ChaCha20(key, counter.to_bytes(4, "little") + nonce), mode=None).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def test_chacha20_nonce_layout_rfc8439_a1_vector_5() -> None:
    """A.1 #5: zero key, nonce 00..02, counter 0; pins the counter-then-nonce layout."""
    block = _chacha20(bytes(32), 0, bytes(11) + b"\x02", bytes(64))
    assert block == h(
        "c2c64d378cd536374ae204b9ef933fcd1a8b2288b3dfa49672ab765b54ee27c7"
        "8a970e0e955c14f3a88e741b97c286f75f8fc299e8148362fa198a39531bed6d"
    )


def test_chacha20_block_function_rfc8439_section_2_3_2() -> None:
    block = _chacha20(bytes(range(32)), 1, h("000000090000004a00000000"), bytes(64))
    assert block == h(
        "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
        "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
    )


def test_chacha20_encryption_rfc8439_section_2_4_2() -> None:
    plaintext = (
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
    )
    ciphertext = h(
        "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
        "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
        "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
        "5af90bbf74a35be6b40b8eedf2785e42874d"
    )
    assert _chacha20(bytes(range(32)), 1, h("000000000000004a00000000"), plaintext) == ciphertext


def test_keystream_into_is_continuous_across_its_internal_chunks() -> None:
    """The keystream is written in 4 MiB slices: one stream, not a restart per slice."""
    length = (1 << 22) + 4096 + 64
    out = np.empty(length // 4, dtype=np.uint32)
    _crypto.chacha20_keystream_into(bytes(range(32)), out)
    reference = _chacha20(bytes(range(32)), 0, bytes(12), bytes(length))
    assert out.tobytes() == reference


def test_keystream_into_refuses_a_seed_that_is_not_256_bit() -> None:
    for seed in (b"", bytes(16), bytes(31), bytes(33)):
        with pytest.raises(ValueError, match="256-bit"):
            _crypto.chacha20_keystream_into(seed, np.empty(4, dtype=np.uint32))
