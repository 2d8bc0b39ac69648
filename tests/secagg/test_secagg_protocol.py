"""The whole round (`local.run_local_round` over `SecAggClient` and `SecAggServer`) with dropouts.

The property: for any cohort, graph, inputs and dropouts, the round either
returns exactly the uint32 sum of the inputs of the nodes whose masked
update arrived, or raises `RoundAborted`; which of the two is predicted by
an independent count of who holds whose shares (`expected_outcome`), so an
abort where the shares suffice also fails the test. Never a wrong sum.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from federation.errors import RoundAborted
from federation.secagg.config import SecAggConfig, session_id
from federation.secagg.local import PHASE_NAMES, run_local_round

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


def expected_outcome(config: SecAggConfig, drop: dict[str, set[int]]) -> set[int] | None:
    """The nodes whose inputs the sum must cover, or None if the round must abort.

    Derived from the protocol, not from the code: a node shares its secrets
    with the neighbours that advertised; every node whose masked update
    arrived is a survivor and counts in the sum, even if it then fails to
    confirm the survivor set; at least `t` survivors must confirm, and only
    those who confirmed may reveal; a survivor's self mask needs `t`
    responders among it and its neighbours that shared; a node dropped after
    sharing needs `t` responders among its neighbours to rebuild its key.
    """
    t, graph = config.threshold, config.graph
    everyone = set(range(len(config.participants)))
    advertised = everyone - drop["advertise-keys"]
    shared = advertised - drop["share-keys"]
    masked = shared - drop["masked-update"]
    confirmed = masked - drop["confirm-survivors"]
    responders = confirmed - drop["unmask"]
    if len(advertised) < t or len(shared) < t or len(masked) < t or len(confirmed) < t:
        return None
    if any(len(graph[i] & advertised) + 1 < t for i in shared):  # a sharer without t holders
        return None
    if any(len(responders & (graph[k] | {k})) < t for k in masked):
        return None
    if any(len(responders & graph[j]) < t for j in shared - masked):
        return None
    return masked


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
    event("aborts" if expected is None else "completes")
    event("complete graph" if config.degree is None else "SecAgg+ graph")
    if expected is None:
        with pytest.raises(RoundAborted):
            run_local_round(config, encoded, drop=drop)
        return
    total, server = run_local_round(config, encoded, drop=drop)
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


def test_a_node_dropped_at_confirm_survivors_is_logged_once() -> None:
    config = make_config(6, threshold=4, degree=None, length=4)
    _, server = run_local_round(config, encoded_inputs(config, 6), drop={"confirm-survivors": {2}})
    assert server.dropouts == {"confirm-survivors": [2]}


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


def test_node_dropped_at_confirm_survivors_still_counts() -> None:
    """Its masked update arrived, so it is a survivor: the others reveal its self mask."""
    config = make_config(6, threshold=4, degree=None, length=33)
    encoded = encoded_inputs(config, 8)
    total, server = run_local_round(config, encoded, drop={"confirm-survivors": {1, 4}})
    np.testing.assert_array_equal(total, plain_sum(encoded, set(range(6)), 33))
    assert server.survivors == frozenset(range(6))
    assert server.dropouts["confirm-survivors"] == [1, 4]


def test_dropouts_at_every_phase_on_a_secagg_plus_graph() -> None:
    config = make_config(12, threshold=4, degree=6, length=50)
    encoded = encoded_inputs(config, 3)
    drop = {"advertise-keys": {0}, "share-keys": {1}, "masked-update": {2}, "confirm-survivors": {9}, "unmask": {11}}
    expected = set(range(12)) - {0, 1, 2}
    assert expected_outcome(config, {p: drop.get(p, set()) for p in PHASE_NAMES}) == expected  # the oracle agrees
    total, server = run_local_round(config, encoded, drop=drop)
    np.testing.assert_array_equal(total, plain_sum(encoded, expected, 50))
    assert server.dropouts == {
        "advertise-keys": [0],
        "share-keys": [1],
        "masked-update": [2],
        "confirm-survivors": [9],
        "unmask": [11],
    }


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
