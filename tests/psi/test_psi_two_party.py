"""federation.psi.two_party and blind: exact against a plaintext join, with nothing beyond what is granted."""

from __future__ import annotations

import random

import pytest
from psi_keys import firm_codes

from federation.errors import InvalidRequest
from federation.psi.blind import POINT, hash_to_points, unpack
from federation.psi.two_party import Receiver, Response, Sender
from federation.psi.uscc import RULE


def run(receiver_keys: list[str], sender_keys: list[str], *, reveal: bool, run_id: str = "run-1") -> tuple[list[str] | None, int]:
    receiver = Receiver(receiver_keys, run_id=run_id, rule=RULE)
    sender = Sender(sender_keys, run_id=run_id, rule=RULE)
    return receiver.finish(sender.respond(receiver.first(), reveal_membership=reveal))


@pytest.mark.parametrize(("n_receiver", "n_sender"), [(1, 1), (5, 400), (400, 5), (300, 300), (0, 50), (50, 0)])
def test_the_intersection_is_exactly_the_plaintext_join_whichever_side_is_larger(n_receiver: int, n_sender: int) -> None:
    for seed in range(4):
        rng = random.Random(seed * 1000 + n_receiver + n_sender)
        pool = firm_codes(n_receiver + n_sender, rng)
        receiver_keys = rng.sample(pool, n_receiver)
        sender_keys = rng.sample(pool, n_sender)  # overlap by chance, from none to all
        shared, count = run(receiver_keys, sender_keys, reveal=True)
        expected = sorted(set(receiver_keys) & set(sender_keys))
        assert shared is not None and sorted(shared) == expected and count == len(expected)  # no false +/- at all


def test_a_sender_that_grants_only_the_count_reveals_no_membership() -> None:
    rng = random.Random(9)
    pool = firm_codes(200, rng)
    shared, count = run(pool[:120], pool[80:], reveal=False)
    assert shared is None and count == 40


def test_blinded_values_are_bound_to_the_run_and_never_the_hash_itself() -> None:
    keys = firm_codes(20, random.Random(3))
    one, two = (Receiver(keys, run_id=r, rule=RULE).first() for r in ("run-1", "run-2"))
    assert not set(unpack(one, what="a")) & set(unpack(two, what="b"))
    assert not set(unpack(one, what="a")) & set(hash_to_points(keys, run_id="run-1", rule=RULE))
    # the same keys under another run do not match: replayed points are useless
    receiver = Receiver(keys, run_id="run-1", rule=RULE)
    sender = Sender(keys, run_id="run-2", rule=RULE)
    assert receiver.finish(sender.respond(receiver.first(), reveal_membership=True)) == ([], 0)


def test_malformed_or_inconsistent_messages_are_refused() -> None:
    keys = firm_codes(10, random.Random(4))
    receiver = Receiver(keys, run_id="r", rule=RULE)
    sender = Sender(keys, run_id="r", rule=RULE)
    with pytest.raises(InvalidRequest, match="not a whole number of 32-byte points"):
        sender.respond(receiver.first()[:-1], reveal_membership=True)
    good = sender.respond(receiver.first(), reveal_membership=True)
    with pytest.raises(InvalidRequest, match="returned 9 points for the receiver's 10"):
        receiver.finish(Response(good.double_blinded[:-POINT], good.sender_points, True))
    with pytest.raises(InvalidRequest, match="the sender's points repeat"):
        receiver.finish(Response(good.double_blinded, good.sender_points[:POINT] * 2, True))
    with pytest.raises(InvalidRequest, match="small order"):
        sender.respond(bytes(POINT), reveal_membership=True)
    with pytest.raises(InvalidRequest, match="keys repeat"):
        Receiver([keys[0], keys[0]], run_id="r", rule=RULE)
