"""A malicious coordinator against the cohort checks (Bonawitz et al. 2017, section 4, active adversary).

The test is the coordinator: it drives `SecAggServer` and the clients by
hand, and tries to invent participants, to swap or replay their signed
keys, and to tell different nodes different survivor sets. A real node
must refuse with `CohortRejected` before any of its secrets leave it, and
never answer that round again. Honest rounds with dropouts in any phase
still give exactly the survivors' sum.

Two trust models (federation/trust/certificates.py):
- "pinned": a node accepts only the certificates its staff pinned by
  fingerprint, so even a coordinator that holds the CA cannot add parties;
- "ca": a node accepts any certificate of the federation's CA, which is
  enough only when the CA is independent of the coordinator (the tests show
  that a coordinator holding the CA then can add parties).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pytest

from federation.errors import CohortRejected, PolicyDenied, ProtocolOrderError, RoundAborted
from federation.secagg import shamir
from federation.secagg.client import SELF_MASK, SecAggClient
from federation.secagg.cohort import Advert, PeerVerifier
from federation.secagg.config import SecAggConfig, session_id
from federation.secagg.local import local_clients, run_local_round
from federation.secagg.masking import MaskAccumulator, pair_sign, pairwise_seed, self_mask_seed
from federation.secagg.server import SecAggServer
from federation.trust import Credentials, PeerTrust, fingerprint
from federation.trust.authority import cert_pem, key_pem, new_ca, new_certificate, throwaway_cohort

LENGTH = 8
REAL = ("node-0", "node-1", "node-2")


def make_config(participants: Sequence[str], *, threshold: int, degree: int | None = None, run: str = "cohort") -> SecAggConfig:
    participants = tuple(participants)
    return SecAggConfig(
        session=session_id(run, 1, participants, payload="update"),
        participants=participants,
        threshold=threshold,
        degree=degree,
        clip=1.0,
        vector_length=LENGTH,
    )


class Authority:
    """A CA in memory: what a coordinator that holds the federation's CA can mint."""

    def __init__(self, common_name: str = "federation-ca") -> None:
        self._ca, self._key = new_ca(common_name, days=1)
        self.ca_pem = cert_pem(self._ca)

    def mint(self, name: str) -> Credentials:
        certificate, key = new_certificate(self._ca, self._key, name, days=1)
        return Credentials.from_pem(cert_pem(certificate), key_pem(key))

    def mint_all(self, names: Sequence[str]) -> dict[str, Credentials]:
        return {name: self.mint(name) for name in names}


def pinned_to(ca_pem: bytes, credentials: Mapping[str, Credentials], names: Sequence[str]) -> PeerTrust:
    return PeerTrust(ca_pem, pins={name: fingerprint(credentials[name].certificate) for name in names})


class AcceptAnyone:
    """The verifier the coordinator gives the participants it runs itself: they accept everyone."""

    def verify(self, name: str, certificate_der: bytes, message: bytes, signature: bytes) -> str:
        return fingerprint(certificate_der)


def clients_for(
    config: SecAggConfig, credentials: Mapping[str, Credentials], trust_of: Callable[[str], PeerVerifier], *, min_cohort: int = 1
) -> dict[int, SecAggClient]:
    return {
        i: SecAggClient(config, i, signer=credentials[name], peers=trust_of(name), min_cohort=min_cohort)
        for i, name in enumerate(config.participants)
    }


def inputs(config: SecAggConfig) -> dict[int, np.ndarray]:
    return {i: np.full(LENGTH, i + 1, dtype=np.uint32) for i in range(len(config.participants))}


def total_of(nodes: set[int] | frozenset[int]) -> np.ndarray:
    return np.full(LENGTH, sum(i + 1 for i in nodes), dtype=np.uint32)


def assert_answers_nothing_more(client: SecAggClient) -> None:
    """A node that rejected a round is done with it: every later phase is refused."""
    assert client.phase == "done"
    with pytest.raises(ProtocolOrderError):
        client.masked_input(np.zeros(LENGTH, dtype=np.uint32), {})
    with pytest.raises(ProtocolOrderError):
        client.confirm(frozenset(range(len(client.config.participants))))
    with pytest.raises(ProtocolOrderError):
        client.unmask({})


def spy_on_unmask(clients: Mapping[int, SecAggClient]) -> dict[int, list[tuple[int, str, bytes]]]:
    """Records what each client's unmask returns: empty as long as no node revealed a share."""
    revealed: dict[int, list[tuple[int, str, bytes]]] = {}
    for i, client in clients.items():

        def unmask(signatures: Mapping[int, bytes], _i: int = i, _unmask=client.unmask) -> list[tuple[int, str, bytes]]:
            revealed[_i] = _unmask(signatures)
            return revealed[_i]

        client.unmask = unmask  # type: ignore[method-assign]
    return revealed


# -- (a) participants the coordinator invents under its own CA --------------------------------


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "ca"])
def test_participants_with_certificates_from_another_ca_are_rejected(pinned: bool) -> None:
    """The classic attack: one real node among sybils, so that the "sum" is the real node's input."""
    invented = ("sybil-1", "sybil-2", "sybil-3")
    config = make_config(("node-0", *invented), threshold=3)
    real_credentials, real_trust = throwaway_cohort(["node-0"], pinned=pinned)
    fake_credentials, _ = throwaway_cohort(invented)  # the coordinator's own CA
    credentials = {**real_credentials, **fake_credentials}
    clients = clients_for(config, credentials, lambda name: real_trust if name == "node-0" else AcceptAnyone())
    server = SecAggServer(config)
    adverts = server.collect_keys({i: c.advertise() for i, c in clients.items()})
    for i in (1, 2, 3):
        clients[i].share_keys(adverts)  # the coordinator's own participants play along
    with pytest.raises(CohortRejected, match="participant 'sybil-1': its certificate's signature does not verify"):
        clients[0].share_keys(adverts)
    assert clients[0].accepted == frozenset()
    assert_answers_nothing_more(clients[0])


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "ca"])
def test_a_real_partys_name_on_a_certificate_from_another_ca_is_rejected(pinned: bool) -> None:
    config = make_config(REAL, threshold=2)
    real_credentials, real_trust = throwaway_cohort(REAL, pinned=pinned)
    forged, _ = throwaway_cohort(["node-2"])  # the coordinator mints "node-2" under its own CA
    clients = clients_for(config, {**real_credentials, **forged}, lambda name: real_trust)
    adverts = {i: c.advertise() for i, c in clients.items()}
    with pytest.raises(CohortRejected, match="participant 'node-2'"):
        clients[0].share_keys(adverts)
    assert_answers_nothing_more(clients[0])


def test_a_ca_with_another_subject_is_refused_by_issuer() -> None:
    config = make_config(REAL, threshold=2)
    real_credentials, real_trust = throwaway_cohort(REAL)
    forged = {"node-2": Authority("coordinators-ca").mint("node-2")}
    clients = clients_for(config, {**real_credentials, **forged}, lambda name: real_trust)
    with pytest.raises(CohortRejected, match="not issued by this federation's CA"):
        clients[0].share_keys({i: c.advertise() for i, c in clients.items()})


# -- (b) and (c) participants the coordinator mints under the federation's CA ----------------------


def test_pinned_nodes_reject_participants_minted_by_a_coordinator_that_holds_the_ca() -> None:
    invented = ("sybil-1", "sybil-2")
    authority = Authority()
    credentials = authority.mint_all([*REAL, *invented])
    pinned = pinned_to(authority.ca_pem, credentials, REAL)
    config = make_config([*REAL, *invented], threshold=3)
    clients = clients_for(config, credentials, lambda name: pinned if name in REAL else AcceptAnyone())
    adverts = SecAggServer(config).collect_keys({i: c.advertise() for i, c in clients.items()})
    for i in range(3):
        with pytest.raises(CohortRejected, match="participant 'sybil-1': it is not among the parties this node accepts"):
            clients[i].share_keys(adverts)
        assert_answers_nothing_more(clients[i])


def test_pinned_nodes_reject_a_second_certificate_minted_for_a_real_party() -> None:
    authority = Authority()
    credentials = authority.mint_all(REAL)
    pinned = pinned_to(authority.ca_pem, credentials, REAL)
    impostor = {"node-2": authority.mint("node-2")}  # the same CA, the same name, another key
    config = make_config(REAL, threshold=2)
    clients = clients_for(config, {**credentials, **impostor}, lambda name: pinned)
    with pytest.raises(CohortRejected, match="participant 'node-2': its certificate is not the one pinned for it"):
        clients[0].share_keys({i: c.advertise() for i, c in clients.items()})
    assert_answers_nothing_more(clients[0])


def test_throwaway_cohort_without_pins_is_the_ca_mode() -> None:
    """throwaway_cohort(pinned=False): the same CA and "ca" trust, so extra names are accepted."""
    names = (*REAL, "sybil-1")
    credentials, trust = throwaway_cohort(names, pinned=False)
    assert trust.mode == "ca" and trust.pins is None
    config = make_config(names, threshold=3)
    clients = clients_for(config, credentials, lambda name: trust)
    total, _ = run_local_round(config, inputs(config), clients=clients)
    np.testing.assert_array_equal(total, total_of(set(range(4))))


def test_ca_mode_accepts_participants_minted_under_the_federations_ca() -> None:
    """Documents the "ca" trust model: it is sound only if the CA is independent of the coordinator.

    A coordinator that holds the CA key can add parties that then count in
    the cohort and in the sum; against such a coordinator use pins.
    """
    invented = ("sybil-1", "sybil-2")
    authority = Authority()
    credentials = authority.mint_all([*REAL, *invented])
    trust = PeerTrust(authority.ca_pem, pins=None)
    assert trust.mode == "ca"
    config = make_config([*REAL, *invented], threshold=3)
    clients = clients_for(config, credentials, lambda name: trust)
    total, server = run_local_round(config, inputs(config), clients=clients)
    np.testing.assert_array_equal(total, total_of(set(range(5))))
    assert all(c.accepted == frozenset(range(5)) for c in clients.values())
    assert server.survivors == frozenset(range(5))


# -- (d) signed keys tampered with, swapped, replayed or duplicated ----------------------------------


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


def tampered_signature(adverts: dict[int, Advert], others: dict[int, Advert]) -> dict[int, Advert]:
    return {**adverts, 1: dataclasses.replace(adverts[1], signature=flip_last_byte(adverts[1].signature))}


def swapped_keys(adverts: dict[int, Advert], others: dict[int, Advert]) -> dict[int, Advert]:
    one, two = adverts[1], adverts[2]
    return {
        **adverts,
        1: dataclasses.replace(one, encryption_public=two.encryption_public, masking_public=two.masking_public),
        2: dataclasses.replace(two, encryption_public=one.encryption_public, masking_public=one.masking_public),
    }


def coordinators_encryption_key(adverts: dict[int, Advert], others: dict[int, Advert]) -> dict[int, Advert]:
    """A man in the middle: the coordinator's own key in place of node 1's, to open the shares sent to it."""
    return {**adverts, 1: dataclasses.replace(adverts[1], encryption_public=others[2].encryption_public)}


def replayed_under_another_index(adverts: dict[int, Advert], others: dict[int, Advert]) -> dict[int, Advert]:
    return {**adverts, 2: adverts[1]}


def own_advert_under_another_index(adverts: dict[int, Advert], others: dict[int, Advert]) -> dict[int, Advert]:
    return {**adverts, 1: adverts[0]}


def replayed_from_another_round(adverts: dict[int, Advert], others: dict[int, Advert]) -> dict[int, Advert]:
    """Node 1's genuine, signed advert from another session (same index, same certificate)."""
    return {**adverts, 1: others[1]}


def own_advert_replaced(adverts: dict[int, Advert], others: dict[int, Advert]) -> dict[int, Advert]:
    return {**adverts, 0: others[0]}


def unparsable_certificate(adverts: dict[int, Advert], others: dict[int, Advert]) -> dict[int, Advert]:
    return {**adverts, 1: dataclasses.replace(adverts[1], certificate=b"not a certificate")}


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        pytest.param(tampered_signature, "participant 'node-1': its signature does not verify", id="tampered-signature"),
        pytest.param(swapped_keys, "participant 'node-1': its signature does not verify", id="keys-swapped"),
        pytest.param(coordinators_encryption_key, "participant 'node-1': its signature does not verify", id="key-substituted"),
        pytest.param(replayed_under_another_index, "participant 'node-2': its certificate is for 'node-1'", id="replayed-index"),
        pytest.param(own_advert_under_another_index, "participant 'node-1': its certificate is for 'node-0'", id="own-as-other"),
        pytest.param(replayed_from_another_round, "participant 'node-1': its signature does not verify", id="other-round"),
        pytest.param(own_advert_replaced, "not the ones it advertised", id="own-replaced"),
        pytest.param(unparsable_certificate, "certificate cannot be parsed", id="unparsable-certificate"),
    ],
)
def test_tampered_or_replayed_adverts_are_rejected_before_anything_is_shared(
    tamper: Callable[[dict[int, Advert], dict[int, Advert]], dict[int, Advert]], reason: str
) -> None:
    names = (*REAL, "node-3")
    credentials, trust = throwaway_cohort(names)
    config = make_config(names, threshold=3)
    clients = clients_for(config, credentials, lambda name: trust)
    adverts = SecAggServer(config).collect_keys({i: c.advertise() for i, c in clients.items()})
    other_round = make_config(names, threshold=3, run="another-run")
    others = {i: c.advertise() for i, c in clients_for(other_round, credentials, lambda name: trust).items()}
    with pytest.raises(CohortRejected, match=reason):
        clients[0].share_keys(tamper(adverts, others))
    assert_answers_nothing_more(clients[0])
    assert clients[1].share_keys(adverts)  # the genuine adverts still verify at the other nodes


def test_the_same_certificate_under_two_indices_is_rejected_even_by_a_lax_verifier() -> None:
    """PeerTrust already refuses it by name (the common name is the party); the client does not rely on that."""
    credentials, _ = throwaway_cohort(REAL)
    config = make_config(REAL, threshold=2)
    clients = clients_for(config, credentials, lambda name: AcceptAnyone())
    adverts = {i: c.advertise() for i, c in clients.items()}
    with pytest.raises(CohortRejected, match="participants 1 and 2 use the same certificate"):
        clients[0].share_keys({**adverts, 2: adverts[1]})
    assert_answers_nothing_more(clients[0])
    with pytest.raises(CohortRejected, match="participants 0 and 1 use the same certificate"):
        clients[2].share_keys({**adverts, 1: dataclasses.replace(adverts[1], certificate=adverts[0].certificate)})


def test_a_node_counts_the_cohort_against_its_minimum_before_sharing() -> None:
    names = (*REAL, "node-3")
    credentials, trust = throwaway_cohort(names)
    config = make_config(names, threshold=3)
    clients = clients_for(config, credentials, lambda name: trust, min_cohort=4)
    adverts = {i: clients[i].advertise() for i in range(3)}  # node-3 "dropped" at advertising
    with pytest.raises(PolicyDenied, match="only 3 parties advertised keys, fewer than this node's minimum of 4"):
        clients[0].share_keys(adverts)
    assert_answers_nothing_more(clients[0])


# -- (e) different survivor sets told to different nodes ------------------------------------------------


def masked_round(n: int = 5, *, threshold: int = 3) -> tuple[dict[int, SecAggClient], SecAggServer]:
    """A round that reached the survivor set: every node's masked update arrived."""
    config = make_config([f"node-{i}" for i in range(n)], threshold=threshold)
    clients = local_clients(config)
    server = SecAggServer(config)
    adverts = server.collect_keys({i: c.advertise() for i, c in clients.items()})
    routed = server.route_shares({i: c.share_keys(adverts) for i, c in clients.items()})
    server.collect_masked({i: c.masked_input(inputs(config)[i], routed[i]) for i, c in clients.items()})
    return clients, server


def test_survivor_sets_that_differ_are_rejected_at_unmask() -> None:
    """Nodes 0 and 1 are told node 4 dropped; nodes 2, 3 and 4 that everyone survived."""
    clients, _ = masked_round()
    told_dropped, everyone = frozenset({0, 1, 2, 3}), frozenset(range(5))
    signatures = {i: clients[i].confirm(told_dropped if i in (0, 1) else everyone) for i in range(5)}
    with pytest.raises(CohortRejected, match="survivor sets differ: participant 'node-2': its signature does not verify"):
        clients[0].unmask({i: signatures[i] for i in told_dropped})
    assert clients[0].phase == "done"
    with pytest.raises(ProtocolOrderError):
        clients[0].unmask({i: signatures[i] for i in told_dropped})
    with pytest.raises(CohortRejected, match="survivor sets differ: participant 'node-0'"):
        clients[2].unmask(signatures)


def test_a_split_cohort_never_gives_the_coordinator_both_secrets_of_a_node() -> None:
    """The attack the check stops: node 4's self mask from those told it survived and its masking key
    from those told it dropped. With signatures only from the matching group, each group misses the
    other's confirmations and refuses, so no share of node 4 (of either kind) is ever revealed."""
    clients, _ = masked_round()
    minority, majority = frozenset({0, 1, 2, 3}), frozenset(range(5))
    signatures = {i: clients[i].confirm(minority if i in (0, 1) else majority) for i in range(5)}
    for i in (0, 1):
        with pytest.raises(CohortRejected, match=r"survivor\(s\) \[2, 3\] did not confirm"):
            clients[i].unmask({j: signatures[j] for j in (0, 1)})
    for i in (2, 3, 4):
        with pytest.raises(CohortRejected, match=r"survivor\(s\) \[0, 1\] did not confirm"):
            clients[i].unmask({j: signatures[j] for j in (2, 3, 4)})
    assert all(c.phase == "done" for c in clients.values())  # none answers again, whatever is relayed next
    with pytest.raises(ProtocolOrderError):
        clients[2].unmask(signatures)


def test_a_forged_or_replayed_survivor_signature_is_rejected() -> None:
    clients, server = masked_round()
    survivors = server.survivors
    signatures = {i: c.confirm(survivors) for i, c in clients.items()}
    forged = {**signatures, 3: flip_last_byte(signatures[3])}
    with pytest.raises(CohortRejected, match="survivor sets differ: participant 'node-3'"):
        clients[0].unmask(forged)
    # node 3's genuine signature over the same indices, but in another session
    other_clients, other_server = masked_round()
    other = {i: c.confirm(other_server.survivors) for i, c in other_clients.items()}
    with pytest.raises(CohortRejected, match="survivor sets differ"):
        clients[1].unmask({**signatures, 3: other[3]})


def test_node_signature_under_another_nodes_index_is_rejected() -> None:
    clients, server = masked_round()
    signatures = {i: c.confirm(server.survivors) for i, c in clients.items()}
    with pytest.raises(CohortRejected, match="participant 'node-2'"):
        clients[0].unmask({**signatures, 2: signatures[1]})


# -- (f) too few confirmations ------------------------------------------------------------------------


@pytest.mark.parametrize("confirmed", [(0, 1), (0, 1, 2, 3)], ids=["below-threshold", "all-but-one"])
def test_a_missing_confirmation_aborts_at_the_server(confirmed: tuple[int, ...]) -> None:
    clients, server = masked_round()
    signatures = {i: clients[i].confirm(server.survivors) for i in confirmed}
    missing = sorted(set(range(5)) - set(confirmed))
    with pytest.raises(RoundAborted, match=rf"survivor\(s\) \[{', '.join(map(str, missing))}\] did not confirm"):
        server.collect_confirmations(signatures)
    assert server.phase == "aborted"
    assert server.dropouts == {"confirm-survivors": missing}
    with pytest.raises(ProtocolOrderError):
        server.finish({})


def test_the_server_relays_only_survivors_signatures() -> None:
    config = make_config([f"node-{i}" for i in range(5)], threshold=3)
    clients = local_clients(config)
    server = SecAggServer(config)
    adverts = server.collect_keys({i: c.advertise() for i, c in clients.items()})
    routed = server.route_shares({i: c.share_keys(adverts) for i, c in clients.items()})
    survivors = server.collect_masked({i: clients[i].masked_input(inputs(config)[i], routed[i]) for i in range(4)})
    assert survivors == frozenset(range(4))
    signatures = {i: clients[i].confirm(survivors) for i in survivors}
    relayed = server.collect_confirmations({**signatures, 4: signatures[0]})
    assert set(relayed) == set(survivors)
    revealed = {i: clients[i].unmask(relayed) for i in relayed}
    np.testing.assert_array_equal(server.finish(revealed), total_of(survivors))


# -- (g) honest rounds with dropouts ----------------------------------------------------------------


COUNTED_AFTER = {"advertise-keys": False, "share-keys": False, "masked-update": False, "unmask": True}


@pytest.mark.parametrize("phase", list(COUNTED_AFTER))
@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "ca"])
def test_honest_round_with_a_dropout_in_each_phase_gives_the_survivors_sum(phase: str, pinned: bool) -> None:
    names = [f"node-{i}" for i in range(6)]
    config = make_config(names, threshold=4)
    credentials, trust = throwaway_cohort(names, pinned=pinned)
    clients = clients_for(config, credentials, lambda name: trust, min_cohort=5)
    total, server = run_local_round(config, inputs(config), drop={phase: {3}}, clients=clients)
    counted = set(range(6)) if COUNTED_AFTER[phase] else set(range(6)) - {3}
    np.testing.assert_array_equal(total, total_of(counted))
    assert server.survivors == frozenset(counted)
    assert server.dropouts[phase] == [3]


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "ca"])
def test_honest_round_with_a_dropout_at_confirm_survivors_aborts_and_reveals_nothing(pinned: bool) -> None:
    """Node 3's masked update arrived, so it is in the sum; without its confirmation its self mask stays on."""
    names = [f"node-{i}" for i in range(6)]
    config = make_config(names, threshold=4)
    credentials, trust = throwaway_cohort(names, pinned=pinned)
    clients = clients_for(config, credentials, lambda name: trust, min_cohort=5)
    revealed = spy_on_unmask(clients)
    with pytest.raises(RoundAborted, match=r"survivor\(s\) \[3\] did not confirm"):
        run_local_round(config, inputs(config), drop={"confirm-survivors": {3}}, clients=clients)
    assert revealed == {}
    assert {i: c.phase for i, c in clients.items()} == {i: "masked" if i == 3 else "confirmed" for i in range(6)}


def test_honest_round_with_dropouts_in_every_other_phase_at_once() -> None:
    config = make_config([f"node-{i}" for i in range(12)], threshold=7)
    clients = local_clients(config, min_cohort=9)
    drop = {"advertise-keys": {0}, "share-keys": {1}, "masked-update": {2}, "unmask": {4}}
    total, server = run_local_round(config, inputs(config), drop=drop, clients=clients)
    np.testing.assert_array_equal(total, total_of(set(range(12)) - {0, 1, 2}))
    assert server.survivors == frozenset(range(3, 12))


def test_dropouts_in_every_phase_at_once_abort_at_confirm_survivors() -> None:
    config = make_config([f"node-{i}" for i in range(12)], threshold=7)
    clients = local_clients(config, min_cohort=9)
    revealed = spy_on_unmask(clients)
    drop = {"advertise-keys": {0}, "share-keys": {1}, "masked-update": {2}, "confirm-survivors": {3}, "unmask": {4}}
    with pytest.raises(RoundAborted, match=r"survivor\(s\) \[3\] did not confirm"):
        run_local_round(config, inputs(config), drop=drop, clients=clients)
    assert revealed == {}


def test_honest_round_on_a_secagg_plus_graph_with_a_masked_update_dropout() -> None:
    config = make_config([f"node-{i}" for i in range(10)], threshold=4, degree=6)
    total, _ = run_local_round(config, inputs(config), drop={"masked-update": {5}})
    np.testing.assert_array_equal(total, total_of(set(range(10)) - {5}))


def test_a_confirm_dropout_on_a_secagg_plus_graph_aborts_and_reveals_nothing() -> None:
    config = make_config([f"node-{i}" for i in range(10)], threshold=4, degree=6)
    clients = local_clients(config)
    revealed = spy_on_unmask(clients)
    with pytest.raises(RoundAborted, match=r"survivor\(s\) \[7\] did not confirm"):
        run_local_round(config, inputs(config), drop={"masked-update": {5}, "confirm-survivors": {7}}, clients=clients)
    assert revealed == {}


def test_a_node_refuses_to_confirm_a_sum_smaller_than_its_minimum() -> None:
    config = make_config([f"node-{i}" for i in range(6)], threshold=4)
    clients = local_clients(config, min_cohort=6)
    with pytest.raises(PolicyDenied, match="fewer than this node's minimum of 6"):
        run_local_round(config, inputs(config), drop={"masked-update": {5}}, clients=clients)


# -- (h) a coordinator that withholds shares from a victim (reviewer's attack) ------------------------
#
# n = 5, t = 3, every node's min_cohort = 5: the coordinator routes the victim's shares to the others
# but keeps theirs from the victim. Formerly the victim then masked its input with its self mask only,
# which the others revealed: the coordinator had the victim's input exactly. Now the victim refuses to
# mask unless `masking_group_needed - 1` peers sent it shares, so there is no vector to unmask at all.

VICTIM = 0
WITHHELD_NAMES = [f"node-{i}" for i in range(5)]


def withheld_round(delivered: int) -> tuple[SecAggConfig, dict[int, SecAggClient], SecAggServer, dict[int, dict[int, bytes]]]:
    """Keys and shares honestly exchanged, except that only `delivered` peers' shares reach the victim."""
    config = make_config(WITHHELD_NAMES, threshold=3)
    credentials, trust = throwaway_cohort(WITHHELD_NAMES)
    clients = clients_for(config, credentials, lambda name: trust, min_cohort=5)
    server = SecAggServer(config)
    adverts = server.collect_keys({i: c.advertise() for i, c in clients.items()})
    routed = server.route_shares({i: c.share_keys(adverts) for i, c in clients.items()})
    assert all(VICTIM in routed[i] for i in range(1, 5))  # the victim's shares go out as usual
    routed[VICTIM] = dict(sorted(routed[VICTIM].items())[:delivered])
    return config, clients, server, routed


@pytest.mark.parametrize("delivered", [0, 3], ids=["all-withheld", "needed-minus-2-delivered"])
def test_a_victim_whose_peers_shares_are_withheld_refuses_to_mask(delivered: int) -> None:
    config, clients, _, routed = withheld_round(delivered)
    victim = clients[VICTIM]
    assert victim.masking_group_needed == 5 and delivered <= victim.masking_group_needed - 2
    with pytest.raises(CohortRejected, match=f"only {delivered} peer\\(s\\) sent shares to mask with; this node needs 4"):
        victim.masked_input(inputs(config)[VICTIM], routed[VICTIM])
    assert_answers_nothing_more(victim)  # no masked vector of the victim ever exists


@pytest.mark.parametrize("delivered", [0, 3], ids=["all-withheld", "needed-minus-2-delivered"])
def test_no_survivor_set_lets_the_coordinator_unmask_anything_of_the_victim(delivered: int) -> None:
    """Whatever survivor set the coordinator announces, and whichever signatures it relays, no node
    reveals a share: a set without the victim is below the others' minimum of 5, and a set with it
    needs the victim's signature, which it never gives. (It gave no masked input to unmask anyway.)"""
    for size in range(1, 6):
        for survivors in map(frozenset, itertools.combinations(range(5), size)):
            config, clients, _, routed = withheld_round(delivered)
            with pytest.raises(CohortRejected):
                clients[VICTIM].masked_input(inputs(config)[VICTIM], routed[VICTIM])
            for i in range(1, 5):
                clients[i].masked_input(inputs(config)[i], routed[i])
            signatures: dict[int, bytes] = {}
            for i in range(5):
                try:
                    signatures[i] = clients[i].confirm(survivors)
                except (CohortRejected, PolicyDenied, ProtocolOrderError):
                    pass
            assert VICTIM not in signatures
            assert not signatures or VICTIM in survivors  # only a set naming the victim reaches 5 parties
            for i in signatures:
                with pytest.raises(CohortRejected, match=rf"survivor\(s\) \[{VICTIM}\] did not confirm"):
                    clients[i].unmask(signatures)


def test_a_victim_with_exactly_enough_peers_shares_masks_and_the_round_completes() -> None:
    """The boundary: `masking_group_needed - 1` = 4 peers' shares are enough (every peer's, here)."""
    config, clients, server, routed = withheld_round(4)
    survivors = server.collect_masked({i: c.masked_input(inputs(config)[i], routed[i]) for i, c in clients.items()})
    signatures = server.collect_confirmations({i: c.confirm(survivors) for i, c in clients.items()})
    total = server.finish({i: c.unmask(signatures) for i, c in clients.items()})
    np.testing.assert_array_equal(total, total_of(set(range(5))))


# -- (i) the sparse-graph partial sum (reviewer's attack) --------------------------------------------
#
# n = 8 on a SecAgg+ ring (degree 2, t = 2). For an adjacent pair (a, b) with other neighbours c and d,
# the coordinator declares c and d dropped: the survivors reveal a's and b's self-mask shares and c's
# and d's masking keys, which removes every mask from y_a + y_b, so it learns x_a + x_b exactly though
# six parties "survived". A node insists that `masking_group_needed - 1` of its mask partners survive.

RING = [f"node-{i}" for i in range(8)]


def ring_pair(config: SecAggConfig) -> tuple[int, int, int, int]:
    """An adjacent pair (a, b) and their other neighbours (c of a, d of b)."""
    a = 0
    b = min(config.graph[a])
    (c,) = config.graph[a] - {b}
    (d,) = config.graph[b] - {a}
    assert len({a, b, c, d}) == 4
    return a, b, c, d


def ring_round(min_cohort: int) -> tuple[SecAggConfig, dict[int, SecAggClient], SecAggServer, dict[int, dict[int, bytes]]]:
    config = make_config(RING, threshold=2, degree=2)
    assert all(len(config.graph[i]) == 2 for i in range(8))
    credentials, trust = throwaway_cohort(RING)
    clients = clients_for(config, credentials, lambda name: trust, min_cohort=min_cohort)
    server = SecAggServer(config)
    adverts = server.collect_keys({i: c.advertise() for i, c in clients.items()})
    routed = server.route_shares({i: c.share_keys(adverts) for i, c in clients.items()})
    return config, clients, server, routed


def partial_sum(
    config: SecAggConfig,
    group: tuple[int, ...],
    declared_dropped: tuple[int, ...],
    masked: Mapping[int, np.ndarray],
    masking_public: Mapping[int, bytes],
    revealed: Mapping[int, list[tuple[int, str, bytes]]],
) -> np.ndarray:
    """The coordinator's computation: the masked vectors of `group` only, minus their self masks and the
    pairwise masks with the nodes it declared dropped, rebuilt from the shares the survivors revealed."""
    t, session = config.threshold, config.session
    self_shares: dict[int, dict[int, bytes]] = {}
    key_shares: dict[int, dict[int, bytes]] = {}
    for holder, entries in revealed.items():
        for owner, kind, share in entries:
            (self_shares if kind == SELF_MASK else key_shares).setdefault(owner, {})[holder + 1] = share
    total = np.zeros(LENGTH, dtype=np.uint32)
    for k in group:
        np.add(total, masked[k], out=total)
    accumulator = MaskAccumulator(total)
    for k in group:
        accumulator.subtract(self_mask_seed(shamir.combine(self_shares[k], threshold=t), session))
    for j in declared_dropped:
        private = shamir.combine(key_shares[j], threshold=t)
        for k in group:
            if j in config.graph[k]:
                accumulator.apply(pairwise_seed(private, masking_public[k], session), -pair_sign(k, j))
    return total


def test_the_sparse_partial_sum_attack_works_where_a_node_accepts_sums_of_two() -> None:
    """The control: at min_cohort 1 a node accepts any sum over `t` = 2 parties, and the attack, played
    here, does give the coordinator exactly x_a + x_b: so the refusals below are not vacuous."""
    config, clients, server, routed = ring_round(min_cohort=1)
    a, b, c, d = ring_pair(config)
    masked = {i: cl.masked_input(inputs(config)[i], routed[i]) for i, cl in clients.items()}
    survivors = server.collect_masked({i: masked[i] for i in masked if i not in (c, d)})  # "c and d dropped"
    signatures = server.collect_confirmations({i: clients[i].confirm(survivors) for i in survivors})
    revealed = {i: clients[i].unmask(signatures) for i in survivors}
    advertised = {i: cl.masking_public for i, cl in clients.items()}  # public: in every node's advert
    attacked = partial_sum(config, (a, b), (c, d), masked, advertised, revealed)
    np.testing.assert_array_equal(attacked, total_of({a, b}))


def test_the_sparse_partial_sum_attack_fails_closed_at_min_cohort_6() -> None:
    """min_cohort 6 on a degree-2 ring: no node ever has the 5 mask partners it needs, so every node
    refuses at masked_input, before any masked vector exists: nothing to unmask, not even for an honest
    coordinator (a degree-2 graph cannot serve a minimum above 3)."""
    config, clients, _, routed = ring_round(min_cohort=6)
    assert all(c.masking_group_needed == 6 for c in clients.values())
    for i, client in clients.items():
        with pytest.raises(CohortRejected, match=r"only 2 peer\(s\) sent shares to mask with; this node needs 5"):
            client.masked_input(inputs(config)[i], routed[i])
        assert_answers_nothing_more(client)


def test_the_sparse_partial_sum_attack_is_refused_at_confirm() -> None:
    """min_cohort 3, the most a degree-2 ring admits: the nodes mask, and at the declared survivor set
    a and b (and the two nodes beyond c and d) see only 1 surviving mask partner of the 2 they need,
    refuse to confirm, and without their signatures nobody reveals anything."""
    config, clients, server, routed = ring_round(min_cohort=3)
    a, b, c, d = ring_pair(config)
    masked = {i: cl.masked_input(inputs(config)[i], routed[i]) for i, cl in clients.items()}
    survivors = server.collect_masked({i: masked[i] for i in masked if i not in (c, d)})  # "c and d dropped"
    assert survivors == frozenset(range(8)) - {c, d}
    isolated = {i for i in survivors if len(config.graph[i] & survivors) < 2}
    assert {a, b} < isolated
    signatures: dict[int, bytes] = {}
    for i in sorted(survivors):
        if i in isolated:
            with pytest.raises(PolicyDenied, match=r"only 1 of this node's mask partners survive; .* at least 3 parties"):
                clients[i].confirm(survivors)
            assert clients[i].phase == "done"
        else:
            signatures[i] = clients[i].confirm(survivors)
    with pytest.raises(RoundAborted, match="did not confirm"):
        server.collect_confirmations(signatures)
    for i in signatures:
        with pytest.raises(CohortRejected, match="did not confirm"):
            clients[i].unmask(signatures)
    for i in isolated:
        with pytest.raises(ProtocolOrderError):
            clients[i].unmask(signatures)
