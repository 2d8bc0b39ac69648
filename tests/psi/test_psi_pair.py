"""federation.psi.pair: two-party PSI in sealed chunks, exact against a plaintext join, and a relay that cannot touch it.

The coordinator is played with real keys: it reorders, drops, replays and
splices chunks, or feeds one step's chunk as another's; every such chunk is
refused with what was wrong, and nothing is learned from it.
"""

from __future__ import annotations

import random

import pytest
from psi_keys import firm_codes

from federation.errors import InvalidRequest, ProtocolOrderError
from federation.policy.model import PsiClause
from federation.psi import pair
from federation.psi.multi_party import COUNT, MEMBERSHIP, NOTHING, REFUSED
from federation.psi.pair import ANSWER, OWN, PairReceiver, PairSender
from federation.psi.plan import Disclosure, Granted
from federation.psi.session import Terms
from federation.psi.uscc import RULE
from federation.trust.authority import throwaway_cohort

NAMES = ("ecology", "power")
CREDENTIALS, TRUST = throwaway_cohort(NAMES)
OPEN = {n: Granted("mass balance", PsiClause(membership_to=("*",), count_to=("coordinator",))) for n in NAMES}


def start(sets: dict[str, list[str]], *, sender_learns: str = "membership", minimum: int = 1) -> tuple[PairReceiver, PairSender]:
    membership = ("ecology", "power") if sender_learns == "membership" else ("ecology",)
    count = ("power", "coordinator") if sender_learns == "count" else ()
    run = Terms("pair-1", NAMES, "ecology", RULE, Disclosure(membership, count))
    receiver = PairReceiver(run, sets["ecology"], min_intersection=minimum, signer=CREDENTIALS["ecology"])
    sender = PairSender(run, sets["power"], min_intersection=minimum, signer=CREDENTIALS["power"])
    adverts = {"ecology": receiver.advert, "power": sender.advert}
    receiver.admit(adverts, TRUST)
    sender.admit(adverts, TRUST)
    return receiver, sender


def play(receiver: PairReceiver, sender: PairSender) -> None:
    for chunk in receiver.own():
        sender.answer(chunk)
    for chunk in sender.own():
        receiver.take(OWN, chunk)
    for chunk in sender.answers():
        receiver.take(ANSWER, chunk)


def sets_for(seed: int, mine: int, theirs: int, shared: int) -> dict[str, list[str]]:
    codes = firm_codes(mine + theirs - shared, random.Random(seed))
    return {"ecology": codes[:mine], "power": codes[mine - shared :]}


@pytest.mark.parametrize(("mine", "theirs", "shared"), [(300, 40, 25), (40, 300, 40), (1, 500, 1), (600, 600, 300)])
def test_exact_against_the_plaintext_join_for_sets_of_very_different_sizes(mine: int, theirs: int, shared: int) -> None:
    sets = sets_for(mine + theirs, mine, theirs, shared)
    receiver, sender = start(sets)
    play(receiver, sender)
    outcome = receiver.finish({n: OPEN[n] for n in NAMES})
    plain = set(sets["ecology"]) & set(sets["power"])
    assert outcome.delivery.status == MEMBERSHIP and outcome.delivery.shared is not None
    assert {sets["ecology"][i] for i in outcome.delivery.shared} == plain and outcome.coordinator_count is None
    told = sender.accept(list(receiver.delivery()))
    assert told.status == MEMBERSHIP and told.shared is not None and {sets["power"][i] for i in told.shared} == plain


def test_chunks_are_many_for_a_large_set_and_every_one_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pair, "CHUNK", 64)
    sets = sets_for(7, 500, 300, 120)
    receiver, sender = start(sets, sender_learns="count")
    chunks = list(receiver.own())
    assert len(chunks) == 8 and {c[1] for c in chunks} == {8}
    with pytest.raises(InvalidRequest, match="chunk 1 of 8 arrived; chunk 0 of 8 was due"):
        sender.answer(chunks[1])  # the relay reorders
    sender.answer(chunks[0])
    with pytest.raises(InvalidRequest, match="chunk 0 of 8 arrived; chunk 1 of 8 was due"):
        sender.answer(chunks[0])  # ... or replays
    index, total, sealed = chunks[1]
    with pytest.raises(InvalidRequest, match="does not authenticate"):
        sender.answer((index, total, sealed[:-1] + bytes([sealed[-1] ^ 1])))  # ... or flips a bit
    with pytest.raises(InvalidRequest, match="does not authenticate"):
        sender.answer((1, 9, sealed))  # ... or claims another count: the count is bound into the seal
    for chunk in chunks[1:]:
        sender.answer(chunk)
    with pytest.raises(ProtocolOrderError, match="all answered already"):
        sender.answer(chunks[-1])
    own = list(sender.own())
    answers = list(sender.answers())
    with pytest.raises(InvalidRequest, match="does not authenticate"):
        receiver.take(ANSWER, own[0])  # one step's chunk fed as another's
    with pytest.raises(ProtocolOrderError, match="have not all arrived"):
        receiver.finish({n: OPEN[n] for n in NAMES})  # a dropped step: nothing is concluded
    for chunk in own:
        receiver.take(OWN, chunk)
    for chunk in answers:
        receiver.take(ANSWER, chunk)
    outcome = receiver.finish({n: OPEN[n] for n in NAMES})
    assert outcome.delivery.shared is not None and len(outcome.delivery.shared) == 120
    told = sender.accept(list(receiver.delivery()))
    assert told.status == COUNT and told.count == 120 and told.shared is None


def test_below_a_minimum_nobody_learns_and_the_sender_granted_nothing_learns_nothing() -> None:
    sets = sets_for(3, 100, 100, 10)
    receiver, sender = start(sets, minimum=11)
    play(receiver, sender)
    outcome = receiver.finish({n: OPEN[n] for n in NAMES})
    assert outcome.refusal is not None and outcome.delivery.status == REFUSED
    refused = list(receiver.delivery())
    assert sender.accept(refused).status == REFUSED
    receiver, sender = start(sets, minimum=1)
    play(receiver, sender)
    receiver.finish({n: OPEN[n] for n in NAMES})
    granted = list(receiver.delivery())
    assert sender.accept(granted).status == MEMBERSHIP
    assert sum(len(c[2]) for c in granted) == sum(len(c[2]) for c in refused)  # one length, fixed by the terms
    receiver, sender = start(sets_for(4, 100, 100, 10), sender_learns="nothing")
    play(receiver, sender)
    receiver.finish({n: OPEN[n] for n in NAMES})
    assert sender.accept(receiver.delivery()).status == NOTHING


def test_the_senders_points_leave_in_a_fresh_random_order_and_only_once() -> None:
    sets = sets_for(5, 50, 200, 20)
    first, second = start(sets)[1], start(sets)[1]
    for party in (first, second):
        list(party.own())
    assert first.order is not None and second.order is not None and list(first.order) != list(second.order)
    assert sorted(first.order.tolist()) == list(range(200))
    with pytest.raises(ProtocolOrderError, match="already sent"):
        list(first.own())


def test_matching_tags_is_exact_even_when_prefixes_collide_and_refuses_repeated_sender_points() -> None:
    rng = random.Random(9)
    theirs = [rng.randbytes(pair.TAG) for _ in range(300)]
    theirs[7] = theirs[3][:8] + b"\x00\x00\x00\x01"  # the same first 8 bytes as another tag, not the same tag
    mine = [theirs[3], rng.randbytes(pair.TAG), theirs[7], theirs[299], theirs[3][:8] + b"\xff\xff\xff\xff"]
    for tags in (theirs, theirs[8:]):  # with and without a shared prefix among the sender's tags
        expected = [(i, tags.index(t)) for i, t in enumerate(mine) if t in tags]
        shared, positions = pair.matches(b"".join(mine), b"".join(tags))
        assert list(zip(shared, positions, strict=True)) == expected
    with pytest.raises(InvalidRequest, match="repeat"):
        pair.matches(b"".join(mine), b"".join([*theirs, theirs[10]]))
