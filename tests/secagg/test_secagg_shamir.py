"""Shamir sharing over GF(2^521 - 1): threshold reconstruction, refusals, malformed and forged shares."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.errors import InvalidRequest
from federation.secagg import shamir

SECRET = bytes(range(32))


@st.composite
def sharings(draw: st.DrawFn) -> tuple[bytes, int, dict[int, bytes], list[int]]:
    """A random secret split among n holders with threshold t, and a random subset of >= t holders."""
    n = draw(st.integers(1, 10))
    t = draw(st.integers(1, n))
    holders = draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n, unique=True))
    secret = draw(st.binary(min_size=32, max_size=32))
    chosen = draw(st.lists(st.sampled_from(holders), min_size=t, max_size=n, unique=True))  # any order
    return secret, t, shamir.split(secret, threshold=t, holders=holders), chosen


@settings(max_examples=60, deadline=None)
@given(sharings())
def test_any_threshold_subset_reconstructs_the_secret(case: tuple[bytes, int, dict[int, bytes], list[int]]) -> None:
    secret, t, shares, chosen = case
    assert shamir.combine({x: shares[x] for x in chosen}, threshold=t) == secret


@settings(max_examples=30, deadline=None)
@given(sharings())
def test_fewer_than_threshold_shares_are_refused(case: tuple[bytes, int, dict[int, bytes], list[int]]) -> None:
    _, t, shares, chosen = case
    short = {x: shares[x] for x in chosen[: t - 1]}
    with pytest.raises(InvalidRequest, match="cannot reconstruct"):
        shamir.combine(short, threshold=t)


def test_shares_have_the_documented_size_and_are_field_elements() -> None:
    shares = shamir.split(SECRET, threshold=3, holders=[1, 2, 3, 4, 5])
    assert sorted(shares) == [1, 2, 3, 4, 5]
    assert all(len(s) == shamir.SHARE_BYTES and int.from_bytes(s, "big") < shamir.PRIME for s in shares.values())


def test_shares_are_fresh_for_each_split() -> None:
    """Coefficients are random: splitting the same secret twice gives unrelated shares."""
    first = shamir.split(SECRET, threshold=2, holders=[1, 2])
    second = shamir.split(SECRET, threshold=2, holders=[1, 2])
    assert first[1] != second[1] and first[2] != second[2]


@pytest.mark.parametrize("t", [2, 3, 5])
def test_threshold_minus_one_shares_plus_a_forged_share_never_give_the_secret(t: int) -> None:
    shares = shamir.split(SECRET, threshold=t, holders=list(range(1, t + 2)))
    honest = {x: shares[x] for x in range(1, t)}
    for _ in range(20):
        forged = {**honest, t: secrets.randbelow(shamir.PRIME).to_bytes(shamir.SHARE_BYTES, "big")}
        try:
            result = shamir.combine(forged, threshold=t)
        except InvalidRequest:
            continue  # the interpolated value left the 256-bit range: detected
        assert result != SECRET


def test_a_crafted_forged_share_moves_the_secret_undetected() -> None:
    """Shares carry no authentication: a holder who knows the Lagrange weight can shift the secret.

    This pins the limit the protocol lives with: integrity of shares in
    transit comes from AES-GCM, and `combine` only notices forgeries that
    leave the 256-bit range.
    """
    t, holders = 3, [1, 2, 3]
    shares = shamir.split(SECRET, threshold=t, holders=holders)
    x_forger = 3
    weight = 1
    for x_j in holders:
        if x_j != x_forger:
            weight = weight * (-x_j) * pow(x_forger - x_j, -1, shamir.PRIME) % shamir.PRIME
    delta = 1
    y = (int.from_bytes(shares[x_forger], "big") + delta * pow(weight, -1, shamir.PRIME)) % shamir.PRIME
    forged = {**shares, x_forger: y.to_bytes(shamir.SHARE_BYTES, "big")}
    expected = (int.from_bytes(SECRET, "big") + delta).to_bytes(32, "big")
    assert shamir.combine(forged, threshold=t) == expected


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"\x00" * (shamir.SHARE_BYTES - 1), id="short"),
        pytest.param(b"\x00" * (shamir.SHARE_BYTES + 1), id="long"),
        pytest.param(b"", id="empty"),
        pytest.param(shamir.PRIME.to_bytes(shamir.SHARE_BYTES, "big"), id="equal-to-prime"),
        pytest.param(b"\xff" * shamir.SHARE_BYTES, id="above-prime"),
    ],
)
def test_malformed_shares_are_refused(bad: bytes) -> None:
    shares = shamir.split(SECRET, threshold=2, holders=[1, 2, 3])
    for position in (1, 2):  # the first or the last point used
        with pytest.raises(InvalidRequest, match="malformed"):
            shamir.combine({**{1: shares[1], 2: shares[2]}, position: bad}, threshold=2)


def test_holder_coordinates_outside_the_field_are_refused_as_invalid_request() -> None:
    shares = shamir.split(SECRET, threshold=2, holders=[1, 2])
    with pytest.raises(InvalidRequest):
        shamir.combine({1: shares[1], 1 + shamir.PRIME: shares[2]}, threshold=2)


@pytest.mark.parametrize(
    ("secret", "threshold", "holders"),
    [
        pytest.param(bytes(31), 1, [1], id="secret-too-short"),
        pytest.param(bytes(33), 1, [1], id="secret-too-long"),
        pytest.param(SECRET, 0, [1, 2], id="threshold-zero"),
        pytest.param(SECRET, -1, [1, 2], id="threshold-negative"),
        pytest.param(SECRET, 3, [1, 2], id="threshold-above-holders"),
        pytest.param(SECRET, 1, [], id="no-holders"),
        pytest.param(SECRET, 2, [1, 1, 2], id="repeated-holder"),
        pytest.param(SECRET, 1, [0, 1], id="holder-zero-is-the-secret"),
        pytest.param(SECRET, 1, [-1, 1], id="negative-holder"),
        pytest.param(SECRET, 1, [shamir.PRIME, 1], id="holder-equal-to-prime"),
    ],
)
def test_split_refuses_invalid_parameters(secret: bytes, threshold: int, holders: list[int]) -> None:
    with pytest.raises(ValueError):
        shamir.split(secret, threshold=threshold, holders=holders)
