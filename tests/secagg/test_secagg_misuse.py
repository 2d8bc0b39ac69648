"""Misuse of the client and server state machines: order, replay, malicious coordinators and nodes.

The coordinator's attempts to invent or swap participants, and to tell nodes
different survivor sets, are in test_secagg_cohort.py; here a participant
misbehaves only through keys it signs with its own certificate.
"""

from __future__ import annotations

import re
import sys
import threading
from dataclasses import dataclass, field

import numpy as np
import pytest

from federation.errors import CohortRejected, InvalidRequest, PolicyDenied, ProtocolOrderError, RoundAborted
from federation.secagg import _crypto
from federation.secagg.client import MASKING_KEY, SELF_MASK, SecAggClient
from federation.secagg.cohort import Advert, advert_message, survivors_message
from federation.secagg.config import SecAggConfig, session_id
from federation.secagg.server import SecAggServer
from federation.trust import Credentials, PeerTrust
from federation.trust.authority import throwaway_cohort

LENGTH = 16


def make_config(n: int = 4, *, threshold: int = 3, degree: int | None = None) -> SecAggConfig:
    participants = tuple(f"node-{i}" for i in range(n))
    return SecAggConfig(
        session=session_id("misuse", 1, participants, payload="update"),
        participants=participants,
        threshold=threshold,
        degree=degree,
        clip=1.0,
        vector_length=LENGTH,
    )


@dataclass
class Round:
    """One round stepped by hand, so a test can stop at any phase and misbehave."""

    config: SecAggConfig
    min_cohort: int = 1
    credentials: dict[str, Credentials] = field(init=False)
    trust: PeerTrust = field(init=False)
    clients: list[SecAggClient] = field(init=False)
    server: SecAggServer = field(init=False)
    adverts: dict[int, Advert] = field(init=False)
    sealed: dict[int, dict[int, bytes]] = field(init=False)
    routed: dict[int, dict[int, bytes]] = field(init=False)
    masked: dict[int, np.ndarray] = field(init=False)
    survivors: frozenset[int] = field(init=False)
    signatures: dict[int, bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.credentials, self.trust = throwaway_cohort(self.config.participants)
        self.clients = [self.client(i) for i in range(len(self.config.participants))]
        self.server = SecAggServer(self.config)

    def client(self, index: int) -> SecAggClient:
        signer = self.credentials[self.config.participants[index]]
        return SecAggClient(self.config, index, signer=signer, peers=self.trust, min_cohort=self.min_cohort)

    def signed(self, index: int, encryption_public: bytes, masking_public: bytes) -> Advert:
        """What participant `index` advertises if it signs keys of its choosing with its own certificate."""
        signer = self.credentials[self.config.participants[index]]
        message = advert_message(self.config.session, index, signer.name, encryption_public, masking_public)
        return Advert(encryption_public, masking_public, signer.certificate, signer.sign(message))

    def advertise(self) -> Round:
        self.adverts = self.server.collect_keys({i: c.advertise() for i, c in enumerate(self.clients)})
        return self

    def share(self) -> Round:
        self.sealed = {i: self.clients[i].share_keys(self.adverts) for i in self.adverts}
        self.routed = self.server.route_shares(self.sealed)
        return self

    def mask(self, *, skip: frozenset[int] = frozenset()) -> Round:
        inputs = {i: np.full(LENGTH, i + 1, dtype=np.uint32) for i in self.routed if i not in skip}
        self.masked = {i: self.clients[i].masked_input(x, self.routed[i]) for i, x in inputs.items()}
        self.survivors = self.server.collect_masked(self.masked)
        return self

    def confirm(self) -> Round:
        self.signatures = self.server.collect_confirmations({i: self.clients[i].confirm(self.survivors) for i in self.survivors})
        return self

    def reveal(self) -> dict[int, list[tuple[int, str, bytes]]]:
        return {i: self.clients[i].unmask(self.signatures) for i in self.signatures}


# -- phases out of order or repeated ------------------------------------------------------------


def test_client_phases_out_of_order_are_refused() -> None:
    client = Round(make_config()).clients[0]
    with pytest.raises(ProtocolOrderError):
        client.share_keys({})
    with pytest.raises(ProtocolOrderError):
        client.masked_input(np.zeros(LENGTH, dtype=np.uint32), {})
    with pytest.raises(ProtocolOrderError):
        client.confirm(frozenset({0, 1, 2}))
    with pytest.raises(ProtocolOrderError):
        client.unmask({})
    assert client.phase == "new"


def test_client_phases_called_twice_are_refused() -> None:
    r = Round(make_config()).advertise()
    with pytest.raises(ProtocolOrderError):
        r.clients[0].advertise()
    r.share()
    with pytest.raises(ProtocolOrderError):
        r.clients[0].share_keys(r.adverts)
    r.mask()
    with pytest.raises(ProtocolOrderError):
        r.clients[0].masked_input(np.zeros(LENGTH, dtype=np.uint32), r.routed[0])
    r.confirm()
    with pytest.raises(ProtocolOrderError):
        r.clients[0].confirm(r.survivors)
    r.reveal()
    with pytest.raises(ProtocolOrderError):
        r.clients[0].unmask(r.signatures)


def test_server_phases_out_of_order_are_refused() -> None:
    server = SecAggServer(make_config())
    with pytest.raises(ProtocolOrderError):
        server.route_shares({})
    with pytest.raises(ProtocolOrderError):
        server.collect_masked({})
    with pytest.raises(ProtocolOrderError):
        server.collect_confirmations({})
    with pytest.raises(ProtocolOrderError):
        server.finish({})
    assert server.phase == "new"


def test_server_phases_called_twice_are_refused() -> None:
    r = Round(make_config()).advertise()
    with pytest.raises(ProtocolOrderError):
        r.server.collect_keys(r.adverts)
    r.share()
    with pytest.raises(ProtocolOrderError):
        r.server.route_shares(r.sealed)
    r.mask()
    with pytest.raises(ProtocolOrderError):
        r.server.collect_masked(r.masked)
    r.confirm()
    with pytest.raises(ProtocolOrderError):
        r.server.collect_confirmations(r.signatures)
    revealed = r.reveal()
    total = r.server.finish(revealed)
    np.testing.assert_array_equal(total, np.full(LENGTH, 1 + 2 + 3 + 4, dtype=np.uint32))
    with pytest.raises(ProtocolOrderError):
        r.server.finish(revealed)


def test_an_aborted_server_answers_nothing_more() -> None:
    r = Round(make_config())
    with pytest.raises(RoundAborted):
        r.server.collect_keys({i: r.clients[i].advertise() for i in range(2)})  # 2 < threshold 3
    assert r.server.phase == "aborted"
    with pytest.raises(ProtocolOrderError):
        r.server.route_shares({})


def test_after_a_refused_share_the_server_does_not_crash_in_the_next_phase() -> None:
    r = Round(make_config(6, threshold=2, degree=2)).advertise()
    sealed = {i: r.clients[i].share_keys(r.adverts) for i in r.adverts}
    stranger = next(j for j in range(6) if j != 0 and j not in r.config.graph[0])
    sealed[0] = {**sealed[0], stranger: b"\x00" * 60}
    with pytest.raises(InvalidRequest, match="non-neighbour"):
        r.server.route_shares(sealed)
    with pytest.raises((ProtocolOrderError, RoundAborted)):
        r.server.collect_masked({i: np.zeros(LENGTH, dtype=np.uint32) for i in range(6)})


# -- a coordinator asking for too much ---------------------------------------------------------


def test_client_refuses_to_unmask_for_survivor_sets_that_differ_and_never_answers_again() -> None:
    """Telling node 0 that node 3 dropped (so it reveals 3's masking key) while the others were told
    3 survived (so they reveal its self mask) would unmask node 3's input: the signatures give it away."""
    r = Round(make_config()).advertise().share().mask()
    everyone = frozenset(range(4))
    told_0 = frozenset({0, 1, 2})
    signatures = {0: r.clients[0].confirm(told_0), **{i: r.clients[i].confirm(everyone) for i in (1, 2, 3)}}
    client = r.clients[0]
    with pytest.raises(CohortRejected, match="survivor sets differ"):
        client.unmask({i: signatures[i] for i in told_0})
    assert client.phase == "done"
    with pytest.raises(ProtocolOrderError):
        client.unmask({i: signatures[i] for i in told_0})  # a retry is not answered either


def test_client_refuses_to_confirm_fewer_survivors_than_its_min_cohort() -> None:
    r = Round(make_config(), min_cohort=4).advertise().share().mask(skip=frozenset({3}))
    assert r.survivors == frozenset({0, 1, 2})
    with pytest.raises(PolicyDenied, match="minimum of 4"):
        r.clients[0].confirm(r.survivors)
    assert r.clients[0].phase == "done"


def test_client_refuses_to_confirm_fewer_survivors_than_the_threshold() -> None:
    r = Round(make_config()).advertise().share().mask()
    with pytest.raises(PolicyDenied, match="minimum of 3"):
        r.clients[0].confirm(frozenset({0, 1}))
    with pytest.raises(ProtocolOrderError):
        r.clients[0].unmask({})


def test_client_refuses_a_survivor_set_that_leaves_out_its_own_input() -> None:
    r = Round(make_config()).advertise().share().mask()
    with pytest.raises(ProtocolOrderError, match="own input"):
        r.clients[0].confirm(frozenset({1, 2, 3}))
    assert r.clients[0].phase == "done"


def test_client_refuses_a_survivor_set_naming_nodes_outside_the_cohort() -> None:
    r = Round(make_config()).advertise().share().mask()
    with pytest.raises(CohortRejected, match=r"never accepted: \[7\]"):
        r.clients[0].confirm(frozenset({0, 1, 2, 3, 7}))


def test_client_refuses_a_survivor_set_naming_a_node_that_never_advertised() -> None:
    r = Round(make_config(5))
    adverts = r.server.collect_keys({i: r.clients[i].advertise() for i in range(4)})  # node 4 never advertised
    r.adverts = adverts
    r.sealed = {i: r.clients[i].share_keys(adverts) for i in adverts}
    r.routed = r.server.route_shares(r.sealed)
    r.mask()
    with pytest.raises(CohortRejected, match=r"never accepted: \[4\]"):
        r.clients[0].confirm(frozenset({0, 1, 2, 4}))


def test_client_refuses_signatures_from_non_survivors() -> None:
    r = Round(make_config()).advertise().share().mask(skip=frozenset({3})).confirm()
    with pytest.raises(CohortRejected, match=r"non-survivors \[3\]"):
        r.clients[0].unmask({**r.signatures, 3: r.signatures[1]})


@pytest.mark.parametrize("confirmed", [(0, 1), (0, 1, 2)], ids=["below-threshold", "threshold-but-not-all"])
def test_client_refuses_to_unmask_unless_every_survivor_confirmed(confirmed: tuple[int, ...]) -> None:
    """Even `t` confirmations (enough shares to unmask) are not enough: every survivor must have signed."""
    r = Round(make_config()).advertise().share().mask().confirm()
    missing = sorted(set(range(4)) - set(confirmed))
    with pytest.raises(CohortRejected, match=re.escape(f"survivor(s) {missing} did not confirm")):
        r.clients[0].unmask({i: r.signatures[i] for i in confirmed})
    assert r.clients[0].phase == "done"
    with pytest.raises(ProtocolOrderError):
        r.clients[0].unmask(r.signatures)  # the full set, afterwards, is not answered either


def test_client_reveals_no_key_share_of_a_dropped_peer_it_never_masked_with() -> None:
    """The client derives the dropped peers itself, from those it masked with: a non-neighbour is never among them."""
    config = make_config(6, threshold=2, degree=2)
    stranger = next(j for j in range(1, 6) if j not in config.graph[0])
    r = Round(config).advertise().share().mask(skip=frozenset({stranger})).confirm()
    revealed = r.clients[0].unmask(r.signatures)
    assert stranger not in {owner for owner, _, _ in revealed}
    assert {owner for owner, kind, _ in revealed if kind == MASKING_KEY} == config.graph[0] - r.survivors


def test_revealed_shares_are_self_masks_of_survivors_and_keys_of_dropped_peers_only() -> None:
    r = Round(make_config()).advertise().share().mask(skip=frozenset({2})).confirm()
    revealed = r.clients[0].unmask(r.signatures)
    assert {(owner, kind) for owner, kind, _ in revealed} == {(0, SELF_MASK), (1, SELF_MASK), (3, SELF_MASK), (2, MASKING_KEY)}


def test_a_survivor_that_did_not_confirm_keeps_its_self_mask() -> None:
    """Node 3's masked update arrived but its confirmation did not: the server aborts, and the nodes,
    given only the other three signatures by a coordinator that carries on, reveal nothing."""
    r = Round(make_config()).advertise().share().mask()
    signatures = {i: r.clients[i].confirm(r.survivors) for i in (0, 1, 2)}
    with pytest.raises(RoundAborted, match=r"survivor\(s\) \[3\] did not confirm"):
        r.server.collect_confirmations(signatures)
    assert r.server.phase == "aborted"
    assert r.server.dropouts == {"confirm-survivors": [3]}
    with pytest.raises(ProtocolOrderError):
        r.server.finish({})
    for i in (0, 1, 2):
        with pytest.raises(CohortRejected, match=r"survivor\(s\) \[3\] did not confirm"):
            r.clients[i].unmask(signatures)


def test_a_survivor_that_refuses_to_confirm_keeps_its_self_mask() -> None:
    """Node 3 refuses the survivor set (its own minimum is 5; node 4 dropped). The others accepted it
    and can unmask node 3's self mask with their shares alone (3 >= t), but refuse without node 3's
    signature, so its input stays masked whatever survivor set or signatures the coordinator tries."""
    r = Round(make_config(5))
    r.clients[3] = SecAggClient(r.config, 3, signer=r.credentials["node-3"], peers=r.trust, min_cohort=5)
    r.advertise().share().mask(skip=frozenset({4}))
    assert r.survivors == frozenset(range(4))
    signatures = {i: r.clients[i].confirm(r.survivors) for i in (0, 1, 2)}
    with pytest.raises(PolicyDenied, match="fewer than this node's minimum of 5"):
        r.clients[3].confirm(r.survivors)
    assert r.clients[3].phase == "done"
    with pytest.raises(RoundAborted, match="did not confirm"):
        r.server.collect_confirmations(signatures)
    forged = {**signatures, 3: signatures[0]}  # another node's signature under node 3's index
    with pytest.raises(CohortRejected, match="survivor sets differ: participant 'node-3'"):
        r.clients[0].unmask(forged)
    for i in (1, 2):
        with pytest.raises(CohortRejected, match=r"survivor\(s\) \[3\] did not confirm"):
            r.clients[i].unmask(signatures)
    assert all(c.phase == "done" for c in r.clients[:4])
    with pytest.raises(ProtocolOrderError):
        r.clients[3].unmask(signatures)


# -- concurrent calls on one client --------------------------------------------------------------


def test_two_concurrent_confirms_with_different_survivor_sets_let_exactly_one_through() -> None:
    """Two threads race to confirm different (each valid) survivor sets on one client: one wins, the
    other is refused, and the client then unmasks only against the set it signed."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, to give a race every chance
    try:
        for trial in range(20):
            r = Round(make_config(5)).advertise().share().mask()
            client, everyone, without_4 = r.clients[trial % 5], frozenset(range(5)), frozenset(range(4))
            sets = (everyone, without_4) if client.index != 4 else (everyone, frozenset({1, 2, 3, 4}))
            barrier = threading.Barrier(2)
            outcomes: dict[frozenset[int], bytes | Exception] = {}

            def confirm(survivors: frozenset[int], _client: SecAggClient = client, _barrier=barrier, _out=outcomes) -> None:
                _barrier.wait()
                try:
                    _out[survivors] = _client.confirm(survivors)
                except Exception as error:  # recorded and checked below
                    _out[survivors] = error

            threads = [threading.Thread(target=confirm, args=(s,)) for s in sets]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=10)
            assert len(outcomes) == 2, outcomes
            won = [s for s, o in outcomes.items() if isinstance(o, bytes)]
            lost = [o for o in outcomes.values() if not isinstance(o, bytes)]
            assert len(won) == 1 and len(lost) == 1, outcomes
            assert isinstance(lost[0], ProtocolOrderError)
            assert client.phase == "confirmed"
            (survivors,) = won
            signature = outcomes[survivors]
            assert isinstance(signature, bytes)
            message = survivors_message(r.config.session, survivors)
            r.trust.verify(client.config.participants[client.index], r.adverts[client.index].certificate, message, signature)
            others = {i: r.clients[i].confirm(survivors) for i in survivors if i != client.index}
            revealed = client.unmask({**others, client.index: signature})
            dropped = everyone - survivors
            assert {(o, k) for o, k, _ in revealed} == {(j, SELF_MASK) for j in survivors} | {(j, MASKING_KEY) for j in dropped}
    finally:
        sys.setswitchinterval(previous)


# -- shares in transit -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "position", [pytest.param(0, id="nonce"), pytest.param(_crypto.NONCE_BYTES + 3, id="ciphertext"), pytest.param(-1, id="tag")]
)
def test_tampered_encrypted_share_is_refused(position: int) -> None:
    r = Round(make_config()).advertise().share()
    box = bytearray(r.routed[1][0])
    box[position] ^= 0x01
    with pytest.raises(InvalidRequest, match="failed authentication"):
        r.clients[1].masked_input(np.zeros(LENGTH, dtype=np.uint32), {**r.routed[1], 0: bytes(box)})


def test_share_replayed_to_another_receiver_is_refused() -> None:
    """Node 0's box for node 1, delivered to node 2 as if node 0 had sent it there."""
    r = Round(make_config()).advertise().share()
    replayed = {**r.routed[2], 0: r.sealed[0][1]}
    with pytest.raises(InvalidRequest, match="failed authentication"):
        r.clients[2].masked_input(np.zeros(LENGTH, dtype=np.uint32), replayed)


def test_share_reflected_back_to_its_sender_is_refused() -> None:
    """The share key is symmetric, so only the (sender, receiver) binding stops a reflected box."""
    r = Round(make_config()).advertise().share()
    reflected = {**r.routed[0], 1: r.sealed[0][1]}  # node 0's own box to node 1, presented as from node 1
    with pytest.raises(InvalidRequest, match="failed authentication"):
        r.clients[0].masked_input(np.zeros(LENGTH, dtype=np.uint32), reflected)


def test_truncated_share_is_refused() -> None:
    r = Round(make_config()).advertise().share()
    with pytest.raises(InvalidRequest, match="too short"):
        r.clients[1].masked_input(np.zeros(LENGTH, dtype=np.uint32), {**r.routed[1], 0: b"\x00" * 27})


def test_shares_from_peers_without_keys_are_refused() -> None:
    r = Round(make_config())
    adverts = r.server.collect_keys({i: r.clients[i].advertise() for i in range(3)})  # node 3 never advertised
    sealed = {i: r.clients[i].share_keys(adverts) for i in range(3)}
    routed = r.server.route_shares(sealed)
    with pytest.raises(InvalidRequest, match="never received"):
        r.clients[0].masked_input(np.zeros(LENGTH, dtype=np.uint32), {**routed[0], 3: sealed[1][0]})


# -- keys offered to a node ---------------------------------------------------------------------


def test_a_node_checks_every_advert_but_shares_only_with_its_neighbours() -> None:
    config = make_config(6, threshold=2, degree=2)
    r = Round(config).advertise()
    sealed = r.clients[0].share_keys(r.adverts)
    assert r.clients[0].accepted == frozenset(range(6))
    assert set(sealed) == config.graph[0]


def test_keys_offered_for_indices_outside_the_cohort_are_refused() -> None:
    r = Round(make_config()).advertise()
    with pytest.raises(InvalidRequest, match="outside the cohort"):
        r.clients[0].share_keys({**r.adverts, 4: r.adverts[1]})
    assert r.clients[0].phase == "done"


def test_other_keys_offered_for_the_node_itself_are_refused() -> None:
    r = Round(make_config()).advertise()
    other = r.signed(0, r.clients[1].encryption_public, r.clients[1].masking_public)  # even signed by node 0's key
    with pytest.raises(CohortRejected, match="not the ones it advertised"):
        r.clients[0].share_keys({**r.adverts, 0: other})


def test_repeated_peer_keys_are_refused() -> None:
    """Node 2 signs node 1's keys as its own: its advert verifies, but the key set repeats."""
    r = Round(make_config()).advertise()
    copied = r.signed(2, *r.adverts[1].keys)
    with pytest.raises(InvalidRequest, match="repeat"):
        r.clients[0].share_keys({**r.adverts, 2: copied})
    assert r.clients[0].phase == "done"


def test_a_peers_two_keys_must_differ() -> None:
    r = Round(make_config()).advertise()
    encryption, _ = r.adverts[1].keys
    with pytest.raises(InvalidRequest, match="repeat"):
        r.clients[0].share_keys({**r.adverts, 1: r.signed(1, encryption, encryption)})


def test_the_nodes_own_key_echoed_back_is_refused() -> None:
    r = Round(make_config()).advertise()
    _, masking = r.adverts[1].keys
    with pytest.raises(InvalidRequest, match="repeat"):
        r.clients[0].share_keys({**r.adverts, 1: r.signed(1, r.clients[0].encryption_public, masking)})


@pytest.mark.parametrize(
    "bad_key", [pytest.param(bytes(32), id="low-order-zero"), pytest.param(bytes(31), id="short"), pytest.param(b"", id="empty")]
)
def test_unusable_encryption_keys_are_refused(bad_key: bytes) -> None:
    r = Round(make_config()).advertise()
    _, masking = r.adverts[1].keys
    with pytest.raises(InvalidRequest, match="X25519"):
        r.clients[0].share_keys({**r.adverts, 1: r.signed(1, bad_key, masking)})


def test_too_few_advertised_neighbours_aborts_at_the_client() -> None:
    r = Round(make_config()).advertise()
    with pytest.raises(RoundAborted, match="share holders"):
        r.clients[0].share_keys({0: r.adverts[0], 1: r.adverts[1]})  # 2 holders, threshold 3


@pytest.mark.parametrize("failure", ["unusable-key", "too-few-holders"])
def test_a_node_that_refused_its_keys_answers_nothing_more(failure: str) -> None:
    r = Round(make_config()).advertise()
    if failure == "unusable-key":
        offered = {**r.adverts, 1: r.signed(1, bytes(32), r.adverts[1].masking_public)}
    else:
        offered = {0: r.adverts[0], 1: r.adverts[1]}
    with pytest.raises((InvalidRequest, RoundAborted)):
        r.clients[0].share_keys(offered)
    assert r.clients[0].phase == "done"


def test_fewer_advertised_parties_than_the_min_cohort_are_refused() -> None:
    r = Round(make_config(), min_cohort=4).advertise()
    with pytest.raises(PolicyDenied, match="only 3 parties advertised keys"):
        r.clients[0].share_keys({i: r.adverts[i] for i in range(3)})
    assert r.clients[0].phase == "done"


# -- what nodes send to the server ---------------------------------------------------------------


def test_keys_from_unknown_participants_are_refused() -> None:
    r = Round(make_config())
    keys = {i: c.advertise() for i, c in enumerate(r.clients)}
    with pytest.raises(InvalidRequest, match="unknown participants"):
        r.server.collect_keys({**keys, 9: keys[0]})


def test_share_addressed_to_a_non_neighbour_is_refused() -> None:
    config = make_config(6, threshold=2, degree=2)
    r = Round(config).advertise()
    sealed = {i: r.clients[i].share_keys(r.adverts) for i in r.adverts}
    stranger = next(j for j in range(1, 6) if j not in config.graph[0])
    with pytest.raises(InvalidRequest, match="non-neighbour"):
        r.server.route_shares({**sealed, 0: {**sealed[0], stranger: b"\x00" * 60}})


def test_share_addressed_to_the_sender_itself_is_refused() -> None:
    r = Round(make_config()).advertise()
    sealed = {i: r.clients[i].share_keys(r.adverts) for i in r.adverts}
    with pytest.raises(InvalidRequest, match="non-neighbour"):
        r.server.route_shares({**sealed, 1: {**sealed[1], 1: b"\x00" * 60}})


@pytest.mark.parametrize(
    "vector",
    [
        pytest.param(np.zeros(LENGTH - 1, dtype=np.uint32), id="short"),
        pytest.param(np.zeros(LENGTH + 1, dtype=np.uint32), id="long"),
        pytest.param(np.zeros(LENGTH, dtype=np.int32), id="int32"),
        pytest.param(np.zeros(LENGTH, dtype=np.uint64), id="uint64"),
        pytest.param(np.zeros(LENGTH, dtype=np.float32), id="float32"),
        pytest.param(np.zeros((1, LENGTH), dtype=np.uint32), id="2-d"),
    ],
)
def test_masked_vector_of_wrong_length_or_dtype_is_refused_by_the_server(vector: np.ndarray) -> None:
    r = Round(make_config()).advertise().share()
    masked = {i: r.clients[i].masked_input(np.zeros(LENGTH, dtype=np.uint32), r.routed[i]) for i in range(4)}
    with pytest.raises(InvalidRequest, match="wrong type or length"):
        r.server.collect_masked({**masked, 2: vector})


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(np.zeros(LENGTH - 1, dtype=np.uint32), id="short"),
        pytest.param(np.zeros(LENGTH, dtype=np.int64), id="int64"),
        pytest.param(np.zeros(LENGTH, dtype=np.float64), id="float64"),
    ],
)
def test_client_refuses_an_encoded_input_of_wrong_length_or_dtype(encoded: np.ndarray) -> None:
    r = Round(make_config()).advertise().share()
    with pytest.raises(InvalidRequest, match="uint32"):
        r.clients[0].masked_input(encoded, r.routed[0])


def test_holder_revealing_a_share_it_cannot_hold_is_refused() -> None:
    config = make_config(6, threshold=2, degree=2)
    r = Round(config).advertise().share().mask().confirm()
    revealed = r.reveal()
    stranger = next(j for j in range(1, 6) if j not in config.holders[0])
    revealed[0] = [*revealed[0], (stranger, SELF_MASK, b"\x00" * 66)]
    with pytest.raises(InvalidRequest, match="cannot hold"):
        r.server.finish(revealed)


def test_unknown_share_kind_is_refused() -> None:
    r = Round(make_config()).advertise().share().mask().confirm()
    revealed = r.reveal()
    revealed[0] = [(owner, "private-key", share) for owner, _, share in revealed[0]]
    with pytest.raises(InvalidRequest, match="unknown share kind"):
        r.server.finish(revealed)


def test_holder_revealing_a_share_of_a_node_outside_the_cohort_is_refused() -> None:
    r = Round(make_config()).advertise().share().mask().confirm()
    revealed = r.reveal()
    revealed[0] = [*revealed[0], (99, SELF_MASK, b"\x00" * 66)]
    with pytest.raises(InvalidRequest):
        r.server.finish(revealed)


def test_withheld_shares_abort_rather_than_give_a_wrong_sum() -> None:
    r = Round(make_config()).advertise().share().mask().confirm()
    revealed = r.reveal()
    for holder in (1, 2):  # only 2 of 4 holders reveal node 0's self-mask share: below threshold 3
        revealed[holder] = [entry for entry in revealed[holder] if entry[0] != 0]
    with pytest.raises(RoundAborted, match=r"unmask node\(s\) \[0\]"):
        r.server.finish(revealed)
    assert r.server.phase == "aborted"


def test_a_corrupted_revealed_share_never_yields_a_silently_wrong_sum_for_that_node() -> None:
    """A malformed share (wrong length) is refused rather than interpolated."""
    r = Round(make_config()).advertise().share().mask().confirm()
    revealed = r.reveal()
    revealed = {holder: [(o, k, s[:-1]) for o, k, s in shares] for holder, shares in revealed.items()}
    with pytest.raises(InvalidRequest, match="malformed"):
        r.server.finish(revealed)


def test_client_index_outside_the_cohort_is_refused() -> None:
    r = Round(make_config())
    for index in (-1, 4):
        with pytest.raises(InvalidRequest, match="not a participant"):
            SecAggClient(r.config, index, signer=r.credentials["node-0"], peers=r.trust)


def test_client_signer_must_be_the_participant_at_its_index() -> None:
    r = Round(make_config())
    with pytest.raises(InvalidRequest, match="not this node"):
        SecAggClient(r.config, 1, signer=r.credentials["node-0"], peers=r.trust)
