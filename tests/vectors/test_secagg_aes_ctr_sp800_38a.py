"""AES-256-CTR (`_crypto.aes256_ctr_keystream_into`, the benchmark's alternative PRG) against NIST SP 800-38A.

F.5.5 (CTR-AES256.Encrypt) starts from the counter block f0f1...feff, and
`aes256_ctr_keystream_into` always starts from the all-zero block, so the
vector cannot go through it directly. Instead a small reference CTR is
built from single-block AES-256 (ECB): it is checked against F.5.5, then
`aes256_ctr_keystream_into` is checked against the reference for its own
starting block, across several blocks so the 128-bit big-endian increment
is exercised too.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from federation.secagg import _crypto

h = bytes.fromhex

F55_KEY = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
F55_COUNTER = h("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
F55_PLAINTEXT = h(
    "6bc1bee22e409f96e93d7e117393172a"
    "ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef"
    "f69f2445df4f9b17ad2b417be66c3710"
)
F55_OUTPUT_BLOCKS = h(
    "0bdf7df1591716335e9a8b15c860c502"
    "5a6e699d536119065433863c8f657b94"
    "1bc12c9c01610d5d0d8bd6a3378eca62"
    "2956e1c8693536b1bee99c73a31576b6"
)
F55_CIPHERTEXT = h(
    "601ec313775789a5b7a7f504bbf3d228"
    "f443e3ca4d62b59aca84e990cacaf5c5"
    "2b0930daa23de94ce87017ba2d84988d"
    "dfc9c58db67aada613c2dd08457941a6"
)


def reference_ctr_keystream(key: bytes, counter_block: bytes, blocks: int) -> bytes:
    """CTR keystream from one-block AES: E_k(T), E_k(T+1), ... with a 128-bit big-endian counter."""
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # one block at a time: the CTR construction itself
    start = int.from_bytes(counter_block, "big")
    return b"".join(ecb.update(((start + i) % 2**128).to_bytes(16, "big")) for i in range(blocks))


def test_reference_ctr_matches_sp800_38a_f55() -> None:
    stream = reference_ctr_keystream(F55_KEY, F55_COUNTER, 4)
    assert stream == F55_OUTPUT_BLOCKS
    assert bytes(a ^ b for a, b in zip(F55_PLAINTEXT, stream, strict=True)) == F55_CIPHERTEXT


def test_cryptography_aes256_ctr_matches_sp800_38a_f55() -> None:
    encryptor = Cipher(algorithms.AES(F55_KEY), modes.CTR(F55_COUNTER)).encryptor()
    assert encryptor.update(F55_PLAINTEXT) + encryptor.finalize() == F55_CIPHERTEXT


def test_aes256_ctr_keystream_into_is_aes256_ctr_from_the_zero_counter_block() -> None:
    out = np.empty(16 * 5, dtype=np.uint8)
    _crypto.aes256_ctr_keystream_into(F55_KEY, out)
    assert out.tobytes() == reference_ctr_keystream(F55_KEY, bytes(16), 5)


def test_aes256_ctr_keystream_into_fills_uint32_masks() -> None:
    words = _crypto.aes256_ctr_keystream_into(F55_KEY, np.zeros(12, dtype="<u4"))
    assert words.tobytes() == reference_ctr_keystream(F55_KEY, bytes(16), 3)
