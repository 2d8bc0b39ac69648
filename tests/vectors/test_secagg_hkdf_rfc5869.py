"""HKDF-SHA256 (`federation.secagg._crypto.hkdf`) against RFC 5869, Appendix A.1-A.3.

Every secure-aggregation key (pairwise masks, self masks, share encryption)
comes out of this one function, so a wrong KDF would silently break
interoperability between nodes running different builds.
"""

from __future__ import annotations

import pytest

from federation.secagg import _crypto

h = bytes.fromhex

RFC5869_SHA256 = [
    pytest.param(
        bytes([0x0B]) * 22,
        bytes(range(0x00, 0x0D)),
        bytes(range(0xF0, 0xFA)),
        42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        id="A.1-basic",
    ),
    pytest.param(
        bytes(range(0x00, 0x50)),
        bytes(range(0x60, 0xB0)),
        bytes(range(0xB0, 0x100)),
        82,
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
        "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
        "cc30c58179ec3e87c14c01d5c1f3434f1d87",
        id="A.2-long-inputs",
    ),
]

CASE_3_OKM = "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"


@pytest.mark.parametrize(("ikm", "salt", "info", "length", "okm"), RFC5869_SHA256)
def test_hkdf_matches_rfc5869(ikm: bytes, salt: bytes, info: bytes, length: int, okm: str) -> None:
    assert _crypto.hkdf(ikm, info=info, salt=salt, length=length) == h(okm)


@pytest.mark.parametrize("salt", [b"", None], ids=["empty-salt", "salt-None"])
def test_hkdf_rfc5869_case_3_empty_salt_and_info(salt: bytes | None) -> None:
    """A.3 has a zero-length salt; RFC 5869 section 2.2 treats "not provided" as HashLen zeros.

    HMAC pads its key with zeros to the block size, so an empty salt and the
    32-zero-byte default that `salt=None` selects are the same HMAC key: both
    must give the published OKM.
    """
    assert _crypto.hkdf(bytes([0x0B]) * 22, info=b"", salt=salt, length=42) == h(CASE_3_OKM)


def test_hkdf_salt_none_equals_hashlen_zero_salt() -> None:
    assert _crypto.hkdf(b"ikm", info=b"x", salt=None) == _crypto.hkdf(b"ikm", info=b"x", salt=bytes(32))


def test_hkdf_output_depends_on_info_and_salt() -> None:
    """Labels separate uses: the same secret under another label or session is another key."""
    base = _crypto.hkdf(b"secret", info=_crypto.LABEL_SELF_MASK, salt=bytes(32))
    assert base != _crypto.hkdf(b"secret", info=_crypto.LABEL_PAIRWISE_MASK, salt=bytes(32))
    assert base != _crypto.hkdf(b"secret", info=_crypto.LABEL_SELF_MASK, salt=bytes(31) + b"\x01")
    assert len(base) == _crypto.KEY_BYTES


def test_labels_are_distinct_and_versioned() -> None:
    labels = [_crypto.LABEL_PAIRWISE_MASK, _crypto.LABEL_SELF_MASK, _crypto.LABEL_SHARE_ENCRYPTION]
    assert len(set(labels)) == len(labels)
    assert all(label.startswith(b"federation/secagg/v1/") for label in labels)


def test_hkdf_info_has_no_default() -> None:
    with pytest.raises(TypeError):
        _crypto.hkdf(b"secret", salt=None)  # type: ignore[call-arg]
