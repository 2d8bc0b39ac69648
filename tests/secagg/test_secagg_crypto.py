"""The crypto wrappers of `_crypto` and `masking`: AEAD binding, key agreement, seeds and mask arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from federation.errors import InvalidRequest
from federation.secagg import _crypto, masking

SESSION = bytes(range(32))


def test_seal_round_trips_and_uses_a_fresh_nonce() -> None:
    key = _crypto.random_bytes(32)
    first = _crypto.seal(key, b"share bytes", associated_data=b"ad")
    second = _crypto.seal(key, b"share bytes", associated_data=b"ad")
    assert first[: _crypto.NONCE_BYTES] != second[: _crypto.NONCE_BYTES]
    assert len(first) == _crypto.NONCE_BYTES + len(b"share bytes") + 16
    assert _crypto.open_sealed(key, first, associated_data=b"ad") == b"share bytes"


def test_open_refuses_wrong_key_and_wrong_binding_without_echoing_anything() -> None:
    key = _crypto.random_bytes(32)
    sealed = _crypto.seal(key, b"secret-share-value", associated_data=masking.share_binding(SESSION, 0, 1))
    for other_key, binding in [
        (_crypto.random_bytes(32), masking.share_binding(SESSION, 0, 1)),
        (key, masking.share_binding(SESSION, 1, 0)),
        (key, masking.share_binding(SESSION, 0, 2)),
        (key, masking.share_binding(bytes(32), 0, 1)),
    ]:
        with pytest.raises(InvalidRequest) as caught:
            _crypto.open_sealed(other_key, sealed, associated_data=binding)
        assert "secret-share-value" not in str(caught.value) and sealed.hex() not in str(caught.value)


def test_seal_requires_associated_data_by_name() -> None:
    with pytest.raises(TypeError):
        _crypto.seal(bytes(32), b"x")  # type: ignore[call-arg]


def test_agree_is_symmetric_and_refuses_low_order_points() -> None:
    private_a, public_a = _crypto.generate_keypair()
    private_b, public_b = _crypto.generate_keypair()
    assert _crypto.agree(private_a, public_b) == _crypto.agree(private_b, public_a)
    with pytest.raises(InvalidRequest, match="X25519"):
        _crypto.agree(private_a, bytes(32))  # the identity point: an all-zero shared secret
    with pytest.raises(InvalidRequest, match="X25519"):
        _crypto.agree(private_a, b"\x01" + bytes(31))  # a small-order point, same all-zero result


def test_generate_keypair_gives_fresh_raw_x25519_keys() -> None:
    (private_a, public_a), (private_b, public_b) = _crypto.generate_keypair(), _crypto.generate_keypair()
    assert len(private_a) == len(public_a) == 32
    assert private_a != private_b and public_a != public_b


def test_pairwise_seeds_agree_from_both_ends_and_separate_sessions_and_uses() -> None:
    private_a, public_a = _crypto.generate_keypair()
    private_b, public_b = _crypto.generate_keypair()
    seed = masking.pairwise_seed(private_a, public_b, SESSION)
    assert seed == masking.pairwise_seed(private_b, public_a, SESSION)
    assert seed != masking.pairwise_seed(private_a, public_b, bytes(32))  # another round
    assert seed != masking.share_key(private_a, public_b, SESSION)  # another use of the same agreement


def test_self_mask_seed_is_bound_to_the_session() -> None:
    secret = _crypto.random_bytes(32)
    assert masking.self_mask_seed(secret, SESSION) != masking.self_mask_seed(secret, bytes(32))
    assert masking.self_mask_seed(secret, SESSION) != secret


def test_share_binding_names_session_sender_and_receiver() -> None:
    bindings = {
        masking.share_binding(SESSION, 0, 1),
        masking.share_binding(SESSION, 1, 0),
        masking.share_binding(SESSION, 0, 2),
        masking.share_binding(bytes(32), 0, 1),
        masking.share_binding(SESSION, 256, 1),
    }
    assert len(bindings) == 5


def test_pair_signs_cancel() -> None:
    for i in range(5):
        for j in range(5):
            if i != j:
                assert masking.pair_sign(i, j) == -masking.pair_sign(j, i)


def test_mask_accumulator_add_then_subtract_restores_the_vector() -> None:
    vector = np.arange(1000, dtype=np.uint32)
    original = vector.copy()
    accumulator = masking.MaskAccumulator(vector)
    accumulator.apply(b"\x07" * 32, +1)
    assert not np.array_equal(vector, original)
    accumulator.apply(b"\x07" * 32, -1)
    np.testing.assert_array_equal(vector, original)


def test_mask_accumulator_adds_the_keystream_modulo_2_to_the_32() -> None:
    vector = np.full(64, 2**32 - 1, dtype=np.uint32)
    masking.MaskAccumulator(vector).add(bytes(32))
    stream = _crypto.keystream_into(bytes(32), np.empty(64, dtype=np.uint32))
    np.testing.assert_array_equal(vector, stream - np.uint32(1))


@pytest.mark.parametrize(
    "vector",
    [
        pytest.param(np.zeros(8, dtype=np.int32), id="int32"),
        pytest.param(np.zeros(8, dtype=np.uint64), id="uint64"),
        pytest.param(np.zeros((2, 4), dtype=np.uint32), id="2-d"),
    ],
)
def test_mask_accumulator_refuses_anything_but_1d_uint32(vector: np.ndarray) -> None:
    with pytest.raises(ValueError, match="1-D uint32"):
        masking.MaskAccumulator(vector)


def test_keystream_into_fills_multidimensional_c_contiguous_arrays() -> None:
    out = np.zeros((4, 4), dtype=np.uint32)
    _crypto.keystream_into(bytes(range(32)), out)
    flat = _crypto.keystream_into(bytes(range(32)), np.empty(16, dtype=np.uint32))
    np.testing.assert_array_equal(out.reshape(-1), flat)


def test_keystream_into_fills_fortran_ordered_arrays() -> None:
    out = np.zeros((4, 4), dtype=np.uint32, order="F")
    _crypto.keystream_into(bytes(range(32)), out)
    assert np.count_nonzero(out) > 8
