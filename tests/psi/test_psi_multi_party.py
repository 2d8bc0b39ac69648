"""federation.psi.multi_party and session: exact for three or more parties, revealing only what the terms grant.

The adversaries are played with real certificates and real keys: a
coordinator that invents a party, swaps a key, tells parties different
terms, replays a message from another run or asks a second question.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from psi_keys import firm_codes

from federation.errors import CohortRejected, InvalidRequest, ProtocolOrderError
from federation.policy.model import PsiClause
from federation.psi.multi_party import COUNT, MEMBERSHIP, NOTHING, REFUSED, Delivery, Outcome, Receiver, Sender
from federation.psi.plan import Disclosure, Granted
from federation.psi.session import Party, Terms
from federation.psi.uscc import RULE
from federation.trust.authority import throwaway_cohort

NAMES = ("commerce", "ecology", "power", "water")
CREDENTIALS, TRUST = throwaway_cohort(NAMES)
OPEN = {n: Granted("mass balance", PsiClause(membership_to=("*",), count_to=("coordinator",))) for n in NAMES}


def terms(parties: tuple[str, ...] = NAMES, *, run_id: str = "run-1", count: tuple[str, ...] = ("power", "coordinator")) -> Terms:
    membership = tuple(p for p in ("ecology", "water") if p in parties)
    return Terms(
        run_id, parties, "ecology", RULE, Disclosure(membership, tuple(c for c in count if c in parties or c == "coordinator"))
    )


def start(run: Terms, sets: dict[str, list[str]], *, minimum: int = 1) -> dict[str, Party]:
    parties: dict[str, Party] = {}
    for name in run.parties:
        role = Receiver if name == run.receiver else Sender
        parties[name] = role(run, sets[name], min_intersection=minimum, signer=CREDENTIALS[name])
    adverts = {n: p.advert for n, p in parties.items()}
    for party in parties.values():
        party.admit(adverts, TRUST)
    return parties


def play(run: Terms, sets: dict[str, list[str]], *, minimum: int = 1) -> tuple[dict[str, Party], Outcome]:
    parties = start(run, sets, minimum=minimum)
    receiver = parties[run.receiver]
    assert isinstance(receiver, Receiver)
    responses = {}
    for sender, query in receiver.queries().items():
        party = parties[sender]
        assert isinstance(party, Sender)
        responses[sender] = party.respond(query)
    return parties, receiver.finish(responses, {n: OPEN[n] for n in run.parties})


def held(party: Party, delivery: Delivery) -> set[str]:
    assert delivery.shared is not None
    return {party.keys[i] for i in delivery.shared}


@pytest.mark.parametrize("sizes", [(300, 250, 280, 260), (20, 400, 350, 380), (400, 15, 390, 370), (120, 120, 0, 120)])
def test_the_receiver_learns_exactly_the_keys_every_party_holds(sizes: tuple[int, ...]) -> None:
    for seed in range(2):
        rng = random.Random(seed * 7 + sum(sizes))
        pool = firm_codes(450, rng)
        sets = {name: rng.sample(pool, size) for name, size in zip(NAMES, sizes, strict=True)}
        truth = set.intersection(*(set(s) for s in sets.values()))
        minimum = 1 if truth else 0
        parties, outcome = play(terms(), sets, minimum=max(minimum, 1))
        if not truth:
            assert outcome.refusal is not None and outcome.delivery.status == REFUSED
            continue
        assert held(parties["ecology"], outcome.delivery) == truth  # no false positive, no false negative
        assert outcome.delivery.count == len(truth) == outcome.coordinator_count


def test_three_parties_suffice_and_partial_overlaps_stay_hidden() -> None:
    rng = random.Random(5)
    pool = firm_codes(300, rng)
    only_water = pool[:50]  # the receiver and water hold these, power does not
    everyone = pool[50:120]
    sets = {"ecology": only_water + everyone + pool[120:150], "water": only_water + everyone, "power": everyone + pool[150:]}
    run = terms(("ecology", "power", "water"))
    parties, outcome = play(run, sets)
    assert held(parties["ecology"], outcome.delivery) == set(everyone)  # not the 50 that only water also holds
    told = parties["water"].accept(outcome.sealed["water"])  # type: ignore[attr-defined]
    assert held(parties["water"], told) == set(everyone)  # water does not learn that the receiver holds the 50 too


def test_each_party_is_told_only_what_the_terms_grant_it() -> None:
    rng = random.Random(11)
    pool = firm_codes(200, rng)
    sets = {n: pool[: 120 + 20 * i] for i, n in enumerate(NAMES)}
    parties, outcome = play(terms(), sets)
    told = {n: p.accept(outcome.sealed[n]) for n, p in parties.items() if isinstance(p, Sender)}
    assert told["water"].status == MEMBERSHIP and held(parties["water"], told["water"]) == set(pool[:120])
    assert told["power"] == Delivery(COUNT, 120, None)
    assert told["commerce"] == Delivery(NOTHING, None, None)
    assert outcome.coordinator_count == 120


def test_below_any_partys_minimum_nobody_learns_membership_or_the_count() -> None:
    rng = random.Random(2)
    pool = firm_codes(200, rng)
    sets = {n: pool[:30] + pool[40 + 40 * i : 70 + 40 * i] for i, n in enumerate(NAMES)}
    parties, outcome = play(terms(), sets, minimum=50)
    assert outcome.refusal is not None and "minimum" in outcome.refusal
    assert outcome.delivery == Delivery(REFUSED, None, None) and outcome.coordinator_count is None
    for name, party in parties.items():
        if isinstance(party, Sender):
            assert party.accept(outcome.sealed[name]) == Delivery(REFUSED, None, None)


def test_a_coordinator_cannot_invent_a_party_or_swap_a_key() -> None:
    sets = {n: firm_codes(20, random.Random(i)) for i, n in enumerate(NAMES)}
    run = terms()
    parties = {
        n: (Receiver if n == "ecology" else Sender)(run, sets[n], min_intersection=1, signer=CREDENTIALS[n]) for n in NAMES
    }
    adverts = {n: p.advert for n, p in parties.items()}
    stranger_credentials, _ = throwaway_cohort(["power"])  # a certificate for "power" from another CA
    impostor = Sender(run, sets["power"], min_intersection=1, signer=stranger_credentials["power"])
    with pytest.raises(CohortRejected, match="power"):
        parties["ecology"].admit({**adverts, "power": impostor.advert}, TRUST)
    swapped = replace(adverts["water"], public=adverts["power"].public)
    with pytest.raises(CohortRejected, match=r"water.*signature does not verify"):
        parties["ecology"].admit({**adverts, "water": swapped}, TRUST)
    with pytest.raises(CohortRejected, match="not the run's parties"):
        parties["ecology"].admit({n: a for n, a in adverts.items() if n != "commerce"}, TRUST)
    with pytest.raises(CohortRejected, match="not the one it signed"):
        parties["water"].admit({**adverts, "water": replace(adverts["water"], set_size=1)}, TRUST)


def test_a_party_told_different_terms_refuses_the_others_adverts() -> None:
    sets = {n: firm_codes(20, random.Random(i)) for i, n in enumerate(NAMES)}
    honest, lying = terms(), terms(count=("power", "commerce", "coordinator"))  # commerce told it learns the count
    parties = {
        n: (Receiver if n == "ecology" else Sender)(honest, sets[n], min_intersection=1, signer=CREDENTIALS[n]) for n in NAMES
    }
    parties["commerce"] = Sender(lying, sets["commerce"], min_intersection=1, signer=CREDENTIALS["commerce"])
    adverts = {n: p.advert for n, p in parties.items()}
    with pytest.raises(CohortRejected, match="signature does not verify"):
        parties["ecology"].admit(adverts, TRUST)
    with pytest.raises(CohortRejected, match="signature does not verify"):
        parties["commerce"].admit(adverts, TRUST)


def test_replays_second_questions_and_tampering_are_refused() -> None:
    rng = random.Random(3)
    pool = firm_codes(60, rng)
    sets = {n: pool[: 40 + 5 * i] for i, n in enumerate(NAMES)}
    first, second = start(terms(run_id="run-1"), sets), start(terms(run_id="run-2"), sets)
    old_query = first["ecology"].queries()["water"]  # type: ignore[attr-defined]
    with pytest.raises(InvalidRequest, match="does not authenticate"):
        second["water"].respond(old_query)  # type: ignore[attr-defined]
    new_query = second["ecology"].queries()["water"]  # type: ignore[attr-defined]
    answer = second["water"].respond(new_query)  # type: ignore[attr-defined]
    with pytest.raises(ProtocolOrderError, match="already answered"):
        second["water"].respond(new_query)  # type: ignore[attr-defined]
    tampered = answer[:-1] + bytes([answer[-1] ^ 1])
    with pytest.raises(InvalidRequest, match="does not authenticate"):
        second["ecology"].open_from("water", "response", tampered)
    with pytest.raises(InvalidRequest, match="does not authenticate"):
        second["power"].open_from("water", "response", answer)  # sealed for the receiver alone


def test_terms_refuse_membership_for_the_coordinator_and_strangers() -> None:
    with pytest.raises(InvalidRequest, match="coordinator may never"):
        Terms("r", NAMES, "ecology", RULE, Disclosure(("ecology", "coordinator"), ()))
    with pytest.raises(InvalidRequest, match="must name it"):
        Terms("r", NAMES, "ecology", RULE, Disclosure(("water",), ()))
    with pytest.raises(InvalidRequest, match=r"\['city-platform'\]"):
        Terms("r", NAMES, "ecology", RULE, Disclosure(("ecology",), ("city-platform",)))
    with pytest.raises(InvalidRequest, match="repeat"):
        Sender(terms(), ["A", "A"], min_intersection=1, signer=CREDENTIALS["water"])


def test_deliveries_have_one_length_whatever_they_carry_and_a_forged_one_is_refused() -> None:
    rng = random.Random(8)
    pool = firm_codes(200, rng)
    lengths = set()
    for shared in (60, 100):  # two runs with different intersections, the same set sizes
        sets = {n: pool[:shared] + pool[shared + 25 * i : shared + 25 * i + 100 - shared] for i, n in enumerate(NAMES)}
        _, outcome = play(terms(run_id=f"len-{shared}"), sets)
        lengths |= {len(sealed) for sealed in outcome.sealed.values()}
    assert len(lengths) == 1  # neither the count nor who learns what shows in a length
    parties, outcome = play(terms(run_id="forged"), {n: pool[:100] for n in NAMES})
    receiver, water = parties["ecology"], parties["water"]
    assert isinstance(water, Sender)
    width = 9 + 32 * 100
    negative = bytes([COUNT]) + (-5).to_bytes(8, "big", signed=True)
    repeated = bytes([MEMBERSHIP]) + (2).to_bytes(8, "big", signed=True) + water.digests[0] * 2
    for forged in (negative, repeated):
        with pytest.raises(InvalidRequest):
            water.accept(receiver.seal_for("water", "delivery", forged + bytes(width - len(forged))))
    with pytest.raises(ProtocolOrderError, match="already admitted"):
        water.admit({n: p.advert for n, p in parties.items()}, TRUST)
