"""federation.psi.oprf and opprf: the oblivious PRF and the programmed tables the multi-party protocol rests on."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from federation.errors import InvalidRequest
from federation.psi.opprf import PRIME, Table, bin_count, bin_of, capacity, to_field
from federation.psi.oprf import OprfClient, OprfKey, hash_to_curve


def digests(n: int, tag: bytes = b"") -> list[bytes]:
    return [hashlib.sha256(tag + i.to_bytes(4, "big")).digest() for i in range(n)]


def test_the_receiver_obtains_exactly_the_key_holders_prf_at_its_own_digests() -> None:
    key, mine = OprfKey(), digests(40)
    client = OprfClient([hash_to_curve(d) for d in mine])
    assert client.finish(key.evaluate(client.blinded)) == key.own(mine)
    assert len(set(key.own(mine))) == 40  # a PRF, not a constant


def test_blinded_points_hide_the_digest_and_differ_for_each_client_and_key() -> None:
    mine = digests(10)
    points = [hash_to_curve(d) for d in mine]
    first, second = OprfClient(points), OprfClient(points)
    assert not set(first.blinded) & set(second.blinded)  # fresh blinding: the key holder cannot link two queries
    one, other = OprfKey(), OprfKey()
    assert set(one.own(mine)).isdisjoint(other.own(mine))  # fresh keys per run give unrelated outputs


def test_a_value_that_is_not_a_curve_point_or_a_short_answer_is_refused() -> None:
    key = OprfKey()
    with pytest.raises(InvalidRequest, match="not a P-256 point"):
        key.evaluate([(1).to_bytes(32, "big")])  # no P-256 point has x = 1
    client = OprfClient([hash_to_curve(d) for d in digests(3)])
    with pytest.raises(InvalidRequest, match="2 oblivious PRF answers for 3"):
        client.finish(key.evaluate(client.blinded)[:2])


@pytest.mark.parametrize("n", [0, 1, 7, 300, 2500])
def test_a_table_gives_the_programmed_value_at_every_programmed_point(n: int) -> None:
    points = [(secrets.randbelow(PRIME), secrets.randbelow(PRIME)) for _ in range(n)]
    table = Table.unpack(Table.program(points).pack(), expected_keys=n)
    assert all(table(t) == z for t, z in points)
    loads = [0] * bin_count(n)
    for t, _ in points:
        loads[bin_of(t, bin_count(n))] += 1
    assert max(loads, default=0) <= capacity(n)


def test_a_table_shows_only_the_set_size_and_is_unrelated_to_values_elsewhere() -> None:
    n = 200
    points = [(secrets.randbelow(PRIME), 0) for _ in range(n)]  # every programmed value is zero
    packed = Table.program(points).pack()
    assert len(packed) == 8 + bin_count(n) * capacity(n) * 16  # the same length for any keys of this set size
    table = Table.unpack(packed, expected_keys=n)
    elsewhere = [table(secrets.randbelow(PRIME)) for _ in range(200)]
    assert 0 not in elsewhere and len(set(elsewhere)) == 200
    top_bits = sum(v >> 126 for v in elsewhere)
    assert 60 < top_bits < 140  # unprogrammed points look uniform, not near any programmed value


def test_a_table_that_does_not_fit_the_advertised_set_size_is_refused() -> None:
    packed = Table.program([(secrets.randbelow(PRIME), 1) for _ in range(100)]).pack()
    with pytest.raises(InvalidRequest, match="does not fit the advertised 300 keys"):
        Table.unpack(packed, expected_keys=300)  # a sender hiding extra rows behind a larger table
    with pytest.raises(InvalidRequest, match="should have"):
        Table.unpack(packed[:-16], expected_keys=100)
    outside = packed[:8] + PRIME.to_bytes(16, "big") + packed[24:]
    with pytest.raises(InvalidRequest, match="outside the field"):
        Table.unpack(outside, expected_keys=100)


def test_field_elements_come_from_16_bytes_and_bins_from_the_top_bits() -> None:
    assert to_field(b"\xff" * 32) == ((1 << 128) - 1) % PRIME
    assert bin_count(0) == 1 and bin_count(8) == 1 and bin_count(9) == 2
    assert capacity(5) == 5 and 20 < capacity(3000) < 60
