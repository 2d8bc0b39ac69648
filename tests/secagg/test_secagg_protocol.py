"""The whole round (`local.run_local_round` over `SecAggClient` and `SecAggServer`) with dropouts.

The property: for any cohort, graph, inputs and dropouts, the round either
returns exactly the uint32 sum of the inputs of the nodes whose masked
update arrived, or aborts (with the error of the phase where it stops, and
revealing nothing if it stops before unmasking); which of the two is
predicted by an independent count of who holds whose shares and who masks
with whom (`expected_outcome`), so an abort where the round should complete
also fails the test. Never a wrong sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from federation.errors import CohortRejected, PolicyDenied, RoundAborted
from federation.secagg import local
from federation.secagg.config import SecAggConfig, session_id
from federation.secagg.local import PHASE_NAMES, local_clients, run_local_round
from federation.secagg.server import SecAggServer

CLIP = 1.0


def make_config(n: int, *, threshold: int, degree: int | None, length: int, run: str = "run") -> SecAggConfig:
    participants = tuple(f"node-{i}" for i in range(n))
    return SecAggConfig(
        session=session_id(run, 1, participants, payload="update"),
        participants=participants,
        threshold=threshold,
        degree=degree,
        clip=CLIP,
        vector_length=length,
    )


def encoded_inputs(config: SecAggConfig, seed: int) -> dict[int, np.ndarray]:
    """What a node sends: (w * update, w) clipped and encoded with the round's quantizer."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for i in range(len(config.participants)):
        weight = rng.uniform(0.01, 1.0)
        update = rng.uniform(-1.2 * CLIP, 1.2 * CLIP, config.vector_length - 1)
        inputs[i] = config.quantizer.encode(np.append(weight * update, weight), rng)
    return inputs


def plain_sum(encoded: dict[int, np.ndarray], nodes: set[int], length: int) -> np.ndarray:
    total = np.zeros(length, dtype=np.uint32)
    for i in nodes:
        np.add(total, encoded[i], out=total)
    return total


@dataclass(frozen=True)
class Abort:
    """The round must stop in `phase`, raising exactly `error`."""

    error: type[Exception]
    phase: str


def expected_outcome(config: SecAggConfig, drop: dict[str, set[int]]) -> set[int] | Abort:
    """The nodes whose inputs the sum must cover, or where and how the round must abort.

    Derived from the protocol, not from the code (every node at the default
    `min_cohort=1`, so each insists on `t` parties masking together):
    a node shares its secrets with the neighbours that advertised, and needs
    `t` holders (itself included); a node masks only if shares arrived from
    at least `t - 1` neighbours (those that shared), else it refuses
    (CohortRejected); every node whose masked update arrived is a survivor
    and counts in the sum; a survivor confirms only if at least `t - 1` of its
    mask partners survived, else it refuses (PolicyDenied); every survivor
    must confirm, so a survivor lost at confirm-survivors aborts the round
    before anything is revealed; a survivor's self mask needs `t` responders
    among it and its neighbours that shared; a node dropped after sharing
    needs `t` responders among its neighbours to rebuild its key.
    Checks are in the order the phases run: the first that fails decides.
    """
    t, graph = config.threshold, config.graph
    everyone = set(range(len(config.participants)))
    advertised = everyone - drop["advertise-keys"]
    shared = advertised - drop["share-keys"]
    masked = shared - drop["masked-update"]
    confirming = masked - drop["confirm-survivors"]
    responders = confirming - drop["unmask"]
    if len(advertised) < t:
        return Abort(RoundAborted, "advertise-keys")
    if any(len(graph[i] & advertised) + 1 < t for i in shared):  # a sharer without t holders
        return Abort(RoundAborted, "share-keys")
    if len(shared) < t:
        return Abort(RoundAborted, "share-keys")
    if any(len(graph[i] & shared) + 1 < t for i in masked):  # too few mask partners sent it shares
        return Abort(CohortRejected, "masked-update")
    if len(masked) < t:
        return Abort(RoundAborted, "masked-update")
    if any(len(graph[i] & masked) + 1 < t for i in confirming):  # too few of its mask partners survived
        return Abort(PolicyDenied, "confirm-survivors")
    if confirming != masked:  # a survivor did not confirm: its self mask stays on
        return Abort(RoundAborted, "confirm-survivors")
    if any(len(responders & (graph[k] | {k})) < t for k in masked):
        return Abort(RoundAborted, "unmask")
    if any(len(responders & graph[j]) < t for j in shared - masked):
        return Abort(RoundAborted, "unmask")
    return masked


@dataclass
class Observed:
    """A round run by `run_local_round`, kept whether it completes or not."""

    server: SecAggServer
    revealed: dict[int, list[tuple[int, str, bytes]]]  # what each node's unmask returned
    total: np.ndarray | None = None
    error: Exception | None = None


def run_observed(config: SecAggConfig, encoded: dict[int, np.ndarray], drop: dict[str, set[int]]) -> Observed:
    """`run_local_round`, keeping its server and every node's revealed shares, even when the round aborts."""
    servers: list[SecAggServer] = []
    revealed: dict[int, list[tuple[int, str, bytes]]] = {}

    def server(cfg: SecAggConfig) -> SecAggServer:
        servers.append(SecAggServer(cfg))
        return servers[-1]

    clients = local_clients(config)
    for i, client in clients.items():

        def unmask(signatures: dict[int, bytes], _i: int = i, _unmask=client.unmask) -> list[tuple[int, str, bytes]]:
            revealed[_i] = _unmask(signatures)
            return revealed[_i]

        client.unmask = unmask  # type: ignore[method-assign]
    with mock.patch.object(local, "SecAggServer", server):
        try:
            total, _ = run_local_round(config, encoded, drop=drop, clients=clients)
        except (RoundAborted, PolicyDenied) as error:
            return Observed(servers[0], revealed, error=error)
    return Observed(servers[0], revealed, total=total)


def complete(drop: dict[str, set[int]]) -> dict[str, set[int]]:
    return {phase: drop.get(phase, set()) for phase in PHASE_NAMES}


@st.composite
def rounds(draw: st.DrawFn) -> tuple[SecAggConfig, dict[str, set[int]], int]:
    n = draw(st.integers(2, 12), label="n")
    sparse_degrees = list(range(2, n - 1, 2))  # even and < n - 1
    degree = draw(st.sampled_from([None, *sparse_degrees]), label="degree")
    holders = n if degree is None else degree + 1
    threshold = draw(st.integers(holders // 2 + 1, holders), label="threshold")
    length = draw(st.integers(1, 300), label="length")
    # (node, phase) pairs: a node listed twice is gone from its earliest phase, as in run_local_round.
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(PHASE_NAMES)), max_size=n), label="drops")
    drop = {phase: {i for i, p in pairs if p == phase} for phase in PHASE_NAMES}
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    return make_config(n, threshold=threshold, degree=degree, length=length), drop, seed


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds())
def test_round_returns_the_survivors_sum_or_aborts_never_a_wrong_sum(case: tuple[SecAggConfig, dict[str, set[int]], int]) -> None:
    config, drop, seed = case
    encoded = encoded_inputs(config, seed)
    expected = expected_outcome(config, drop)
    event(f"aborts at {expected.phase} ({expected.error.__name__})" if isinstance(expected, Abort) else "completes")
    event("complete graph" if config.degree is None else "SecAgg+ graph")
    observed = run_observed(config, encoded, drop)
    if isinstance(expected, Abort):
        assert observed.total is None
        assert type(observed.error) is expected.error, observed.error
        if expected.phase != "unmask":
            assert observed.revealed == {}  # stopped before any node revealed a share
        return
    assert observed.error is None, observed.error
    total, server = observed.total, observed.server
    assert total is not None
    assert total.dtype == np.uint32 and total.shape == (config.vector_length,)
    np.testing.assert_array_equal(total, plain_sum(encoded, expected, config.vector_length))
    assert server.phase == "done"
    assert server.dropouts == expected_dropouts(drop)


def expected_dropouts(drop: dict[str, set[int]]) -> dict[str, list[int]]:
    """The server's dropout log names each node once, at the phase it vanished."""
    gone: set[int] = set()
    recorded = {}
    for phase in PHASE_NAMES:
        lost = drop.get(phase, set()) - gone
        gone |= lost
        if lost:
            recorded[phase] = sorted(lost)
    return recorded


def test_a_node_dropped_at_confirm_survivors_is_logged_once_and_aborts_the_round() -> None:
    config = make_config(6, threshold=4, degree=None, length=4)
    observed = run_observed(config, encoded_inputs(config, 6), {"confirm-survivors": {2}})
    assert isinstance(observed.error, RoundAborted) and "did not confirm" in str(observed.error)
    assert observed.server.dropouts == {"confirm-survivors": [2]}
    assert observed.server.phase == "aborted"


def test_full_round_without_dropouts_decodes_to_the_float_sum() -> None:
    config = make_config(5, threshold=3, degree=None, length=64)
    rng = np.random.default_rng(7)
    values = {i: rng.uniform(-CLIP, CLIP, 64) for i in range(5)}
    encoded = {i: config.quantizer.encode(v, rng) for i, v in values.items()}
    total, server = run_local_round(config, encoded)
    exact = sum(values.values())
    np.testing.assert_allclose(config.quantizer.decode(total), exact, atol=5 / config.quantizer.scale + 1e-6)
    assert server.dropouts == {}


def test_node_dropped_before_its_masked_update_is_left_out() -> None:
    config = make_config(6, threshold=4, degree=None, length=33)
    encoded = encoded_inputs(config, 1)
    total, server = run_local_round(config, encoded, drop={"masked-update": {2}})
    np.testing.assert_array_equal(total, plain_sum(encoded, {0, 1, 3, 4, 5}, 33))
    assert server.dropouts == {"masked-update": [2]}


def test_node_dropped_at_unmask_still_counts() -> None:
    config = make_config(6, threshold=4, degree=None, length=33)
    encoded = encoded_inputs(config, 2)
    total, server = run_local_round(config, encoded, drop={"unmask": {0, 5}})
    np.testing.assert_array_equal(total, plain_sum(encoded, set(range(6)), 33))
    assert server.dropouts == {"unmask": [0, 5]}


def test_node_dropped_at_confirm_survivors_aborts_the_round_and_nothing_is_revealed() -> None:
    """Its masked update arrived, so it is a survivor; without its confirmation its self mask stays on."""
    config = make_config(6, threshold=4, degree=None, length=33)
    observed = run_observed(config, encoded_inputs(config, 8), {"confirm-survivors": {1, 4}})
    assert isinstance(observed.error, RoundAborted)
    assert "survivor(s) [1, 4] did not confirm" in str(observed.error)
    assert observed.total is None and observed.revealed == {}
    assert observed.server.survivors == frozenset(range(6))
    assert observed.server.dropouts["confirm-survivors"] == [1, 4]


def test_dropouts_at_every_phase_on_a_secagg_plus_graph() -> None:
    config = make_config(12, threshold=4, degree=6, length=50)
    encoded = encoded_inputs(config, 3)
    drop = {"advertise-keys": {0}, "share-keys": {1}, "masked-update": {2}, "unmask": {11}}
    expected = set(range(12)) - {0, 1, 2}
    assert expected_outcome(config, complete(drop)) == expected  # the oracle agrees
    total, server = run_local_round(config, encoded, drop=drop)
    np.testing.assert_array_equal(total, plain_sum(encoded, expected, 50))
    assert server.dropouts == {"advertise-keys": [0], "share-keys": [1], "masked-update": [2], "unmask": [11]}


def test_a_confirm_survivors_dropout_on_a_secagg_plus_graph_aborts_with_nothing_revealed() -> None:
    config = make_config(12, threshold=4, degree=6, length=50)
    drop = {"advertise-keys": {0}, "share-keys": {1}, "masked-update": {2}, "confirm-survivors": {9}, "unmask": {11}}
    assert expected_outcome(config, complete(drop)) == Abort(RoundAborted, "confirm-survivors")
    observed = run_observed(config, encoded_inputs(config, 3), drop)
    assert isinstance(observed.error, RoundAborted) and "survivor(s) [9] did not confirm" in str(observed.error)
    assert observed.revealed == {}
    assert observed.server.dropouts == {
        "advertise-keys": [0],
        "share-keys": [1],
        "masked-update": [2],
        "confirm-survivors": [9],
    }


def test_a_node_whose_neighbours_did_not_share_refuses_to_mask() -> None:
    """On a sparse graph, dropouts at share-keys can leave a node too few mask partners: it refuses."""
    config = make_config(8, threshold=2, degree=2, length=4)
    victim = 0
    drop = complete({"share-keys": set(config.graph[victim])})
    assert expected_outcome(config, drop) == Abort(CohortRejected, "masked-update")
    observed = run_observed(config, encoded_inputs(config, 9), drop)
    assert isinstance(observed.error, CohortRejected)
    assert "only 0 peer(s) sent shares to mask with; this node needs 1" in str(observed.error)
    assert observed.revealed == {}


def test_a_survivor_whose_mask_partners_dropped_refuses_to_confirm() -> None:
    """On a sparse graph, dropouts at masked-update can leave a survivor too few surviving partners."""
    config = make_config(8, threshold=2, degree=2, length=4)
    drop = complete({"masked-update": set(config.graph[0])})
    assert expected_outcome(config, drop) == Abort(PolicyDenied, "confirm-survivors")
    observed = run_observed(config, encoded_inputs(config, 10), drop)
    assert isinstance(observed.error, PolicyDenied)
    assert "only 0 of this node's mask partners survive" in str(observed.error)
    assert observed.revealed == {}


def test_phase_names_put_the_survivor_confirmation_between_masking_and_unmasking() -> None:
    assert PHASE_NAMES == ("advertise-keys", "share-keys", "masked-update", "confirm-survivors", "unmask")


@pytest.mark.parametrize(
    "drop",
    [
        {"advertise-keys": {0, 1, 2}},
        {"share-keys": {0, 1, 2}},
        {"masked-update": {3, 4, 5}},
        {"confirm-survivors": {3, 4, 5}},
        {"unmask": {0, 1, 2}},
        {"advertise-keys": {0}, "share-keys": {1}, "masked-update": {2}},
        {"share-keys": {0}, "confirm-survivors": {1}, "unmask": {2}},
    ],
    ids=["advertise", "share", "masked", "confirm", "unmask", "one-per-phase", "share-confirm-unmask"],
)
def test_too_few_remaining_aborts(drop: dict[str, set[int]]) -> None:
    config = make_config(6, threshold=4, degree=None, length=8)
    with pytest.raises(RoundAborted):
        run_local_round(config, encoded_inputs(config, 4), drop=drop)


def test_unknown_phase_name_is_refused() -> None:
    config = make_config(3, threshold=2, degree=None, length=4)
    with pytest.raises(ValueError, match="unknown phases"):
        run_local_round(config, encoded_inputs(config, 5), drop={"unmasking": {1}})
