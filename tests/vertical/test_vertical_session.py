"""federation.vertical.session and wire: terms every party signs, and letters a coordinator can carry but not touch.

The coordinator is played with real certificates and keys: it invents a
party, holds a key itself, tells parties different terms, and replays,
reorders or forges letters.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from federation.errors import CohortRejected, InvalidRequest
from federation.trust.authority import throwaway_cohort
from federation.vertical import wire
from federation.vertical.session import Keyring, Terms

NAMES = ("commerce", "ecology", "statistics", "water")
CREDENTIALS, TRUST = throwaway_cohort(NAMES)
COLUMNS = {"ecology": ("outflow", "cod"), "water": ("intake",), "statistics": ("output",), "commerce": ("materials",)}


def terms(**changes: object) -> Terms:
    base = Terms("v-1", "psi-1", "mass-balance", "ecology", "water", "statistics", COLUMNS, "violation", "seed-1")
    return replace(base, **changes)  # type: ignore[arg-type]


def admitted(run: Terms, rows: int = 50) -> dict[str, Keyring]:
    rings = {n: Keyring(run, n, rows, CREDENTIALS[n]) for n in NAMES}
    adverts = {n: r.advert for n, r in rings.items()}
    for ring in rings.values():
        ring.admit(adverts, TRUST)
    return rings


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"columns": {**COLUMNS, "commerce": ("materials", "intake")}}, "'intake' is named for both 'water' and 'commerce'"),
        ({"helper": "water"}, "three different parties"),
        ({"compute": "power"}, "compute party 'power' contributes no columns"),
        ({"target": "intake"}, "target 'intake' is also named as a feature of 'water'"),
        ({"columns": {"ecology": ("outflow",), "water": ("intake",)}}, "three or more"),
        ({"columns": {**COLUMNS, "coordinator": ("x",)}}, "reserved for the coordinator"),
        ({"max_steps": 0}, "training settings"),
        ({"inspect_share": 0.0}, "training settings"),
        ({"columns": {"ecology": ("outflow",)}}, "label party alone names it in every role"),
        ({"columns": {"water": ("intake",)}, "label": "water", "compute": "water", "helper": "ecology"}, "every role"),
    ],
)
def test_terms_refuse_what_no_run_can_do_and_say_what(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        terms(**changes)


def test_terms_travel_as_json_and_every_field_is_in_the_digest() -> None:
    run = terms()
    assert Terms.from_json(run.to_json()) == run
    assert terms(split_seed="seed-2").digest != run.digest and terms(learning_rate=1.0).digest != run.digest
    with pytest.raises(InvalidRequest, match="do not parse"):
        Terms.from_json('{"run_id": 1}')


def test_a_coordinator_cannot_add_a_party_hold_a_key_or_tell_parties_different_terms() -> None:
    run = terms()
    rings = {n: Keyring(run, n, 50, CREDENTIALS[n]) for n in NAMES}
    adverts = {n: r.advert for n, r in rings.items()}
    stranger, _ = throwaway_cohort(["water"])
    with pytest.raises(CohortRejected, match="water"):
        rings["ecology"].admit({**adverts, "water": Keyring(run, "water", 50, stranger["water"]).advert}, TRUST)
    other = Keyring(terms(split_seed="chosen"), "commerce", 50, CREDENTIALS["commerce"])
    with pytest.raises(CohortRejected, match="commerce"):
        rings["ecology"].admit({**adverts, "commerce": other.advert}, TRUST)
    with pytest.raises(CohortRejected, match="not the run's parties"):
        rings["ecology"].admit({n: a for n, a in adverts.items() if n != "commerce"}, TRUST)
    uneven = Keyring(run, "statistics", 49, CREDENTIALS["statistics"])
    with pytest.raises(CohortRejected, match="not the same rows"):
        rings["ecology"].admit({**adverts, "statistics": uneven.advert}, TRUST)


def test_letters_open_once_in_order_for_their_recipient_only() -> None:
    rings = admitted(terms())
    first = rings["ecology"].seal("water", b"one")
    second = rings["ecology"].seal("water", b"two")
    with pytest.raises(InvalidRequest, match="letter 1 arrived where letter 0 was due"):
        rings["water"].open(second)
    assert rings["water"].open(first) == b"one"
    with pytest.raises(InvalidRequest, match="letter 0 arrived where letter 1 was due"):
        rings["water"].open(first)  # a replay
    with pytest.raises(InvalidRequest, match="does not authenticate"):
        rings["water"].open(replace(second, sealed=second.sealed[:-1] + bytes([second.sealed[-1] ^ 1])))
    assert rings["water"].open(second) == b"two"
    with pytest.raises(InvalidRequest, match="delivered to 'commerce'"):
        rings["commerce"].open(rings["ecology"].seal("water", b"three"))
    assert rings["ecology"].streams["water"] == rings["water"].streams["ecology"] != rings["water"].streams["commerce"]


def test_a_payload_packs_and_unpacks_exactly_and_a_malformed_one_is_refused_whole() -> None:
    items = {"0/product/1": np.arange(12, dtype=np.uint64).reshape(2, 3, 2) * np.uint64(2**61), "x": np.zeros(0, dtype=np.uint64)}
    back = wire.unpack(wire.pack(items))
    assert set(back) == set(items) and all(np.array_equal(back[k], items[k]) and back[k].shape == items[k].shape for k in items)
    packed = wire.pack(items)
    for broken in (packed[:-1], packed + b"\x00", packed[:3], b"\x00\x00\x00\x01\xff\xff"):
        with pytest.raises(InvalidRequest):
            wire.unpack(broken)


def test_the_label_party_alone_is_a_run_of_one_in_every_role_and_signs_its_own_terms() -> None:
    run = terms(columns={"ecology": ("outflow", "cod")}, compute="ecology", helper="ecology")
    assert run.alone and run.parties == ("ecology",) and run.role("ecology") == "label party" and not terms().alone
    ring = Keyring(run, "ecology", 50, CREDENTIALS["ecology"])
    ring.admit({"ecology": ring.advert}, TRUST)
    with pytest.raises(CohortRejected):  # the coordinator cannot slip a second party into a run alone
        Keyring(run, "ecology", 50, CREDENTIALS["ecology"]).admit({"ecology": ring.advert, "water": ring.advert}, TRUST)
