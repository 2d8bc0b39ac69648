"""Secure aggregation over real gRPC nodes with mutual TLS."""

from __future__ import annotations

import uuid
from dataclasses import replace

import numpy as np
import pytest
from fedkit import PURPOSE, City, LiveNode, scaled_task, small_task

from federation.coordinator.client import NodeClient
from federation.coordinator.grid import SecureSettings
from federation.coordinator.negotiate import negotiate
from federation.coordinator.run import run_federated
from federation.coordinator.secure_round import run_secure_round
from federation.errors import CohortRejected, PolicyDenied, ProtocolOrderError
from federation.experiments.topologies import initial_model
from federation.secagg.config import RoundParameters
from federation.task import RunContext, TaskSpec

SETTINGS = SecureSettings(clip=1.0, max_weight=4096.0)


def accepted(clients: list[NodeClient], task: TaskSpec, release: str = "masked-update") -> str:
    run_id = f"sec-{uuid.uuid4().hex[:8]}"
    assert negotiate(clients, RunContext(run_id, PURPOSE), task, release=release).can_start
    return run_id


def test_secure_training_matches_plain_fedavg_within_quantisation(live_nodes: dict[str, LiveNode], city: City) -> None:
    clients = [node.client(city) for node in live_nodes.values()]
    task = scaled_task(clients, small_task("mlp", rounds=3, hidden=[8]))
    results = {}
    for secure in (None, SETTINGS):
        run_id = accepted(clients, task)
        outcome = run_federated(
            clients,
            task,
            initial_model(task),
            run_id=run_id,
            purpose=PURPOSE,
            strategy="fedavg",
            proximal_mu=0.0,
            checkpoint_dir=None,
            secure=secure,
        )
        rounds, failures, secure_rounds = outcome.rounds, outcome.failures, outcome.secure_rounds
        assert failures == []
        results[secure is not None] = (rounds, secure_rounds)
    (plain, _), (masked, secure_rounds) = results[False], results[True]
    assert len(secure_rounds) == 3 and all(not r["aborted"] and not r["dropouts"] for r in secure_rounds)
    for round_plain, round_masked in zip(plain, masked, strict=True):
        for node in round_plain:
            assert round_masked[node].loss == pytest.approx(round_plain[node].loss, abs=1e-4)
            assert round_masked[node].auc == pytest.approx(round_plain[node].auc, abs=0.01)


def test_secure_round_equals_the_weighted_mean_of_plain_updates(live_nodes: dict[str, LiveNode], city: City) -> None:
    clients = [node.client(city) for node in live_nodes.values()]
    task = scaled_task(clients, small_task(rounds=1))
    initial = initial_model(task)
    secure_id, plain_id = accepted(clients, task), accepted(clients, task)
    parameters = SETTINGS.parameters([c.node_id for c in clients], initial)
    outcome = run_secure_round(clients, RunContext(secure_id, PURPOSE, 1), task, initial, parameters)
    assert outcome.arrays is not None and outcome.aborted == ""
    fits = [c.fit(RunContext(plain_id, PURPOSE, 1), task, initial) for c in clients]
    weights = np.array([f.num_examples for f in fits], dtype=np.float64)
    assert outcome.total_weight == pytest.approx(weights.sum(), abs=1e-3)
    for index, (_, array) in enumerate(outcome.arrays):
        expected = sum(w * f.arrays[index][1] for w, f in zip(weights, fits, strict=True)) / weights.sum()
        np.testing.assert_allclose(array, expected, atol=1e-5)


def parameters_for(clients: list[NodeClient], task: TaskSpec, **changes: object) -> RoundParameters:
    return replace(SETTINGS.parameters([c.node_id for c in clients], initial_model(task)), **changes)  # type: ignore[arg-type]


def test_a_forged_survivor_set_signature_ends_the_round_with_nothing_revealed(
    live_nodes: dict[str, LiveNode], city: City
) -> None:
    clients = [node.client(city) for node in live_nodes.values()]
    task = scaled_task(clients, small_task(rounds=1))
    run_id = accepted(clients, task)
    context = RunContext(run_id, PURPOSE, 1)
    parameters = parameters_for(clients, task)
    adverts = {i: c.advertise_keys(context, task, parameters) for i, c in enumerate(clients)}
    sealed = {i: c.share_keys(context, adverts) for i, c in enumerate(clients)}
    routed = {i: {j: boxes[i] for j, boxes in sealed.items() if i in boxes} for i in range(3)}
    for i, client in enumerate(clients):
        client.masked_update(context, task, routed[i], initial_model(task))
    everyone = frozenset({0, 1, 2})
    signatures = {i: c.confirm_survivors(context, everyone) for i, c in enumerate(clients)}
    forged = {**signatures, 2: signatures[1]}  # node 2's "signature" is node 1's: a set node 2 never signed
    with pytest.raises(CohortRejected, match="survivor sets differ"):
        clients[0].unmask(context, forged)
    with pytest.raises(ProtocolOrderError):  # and it is not asked again, even honestly
        clients[0].unmask(context, signatures)


def test_phases_out_of_order_get_failed_precondition(live_nodes: dict[str, LiveNode], city: City) -> None:
    clients = [node.client(city) for node in live_nodes.values()]
    task = scaled_task(clients, small_task(rounds=2))
    run_id = accepted(clients, task)
    with pytest.raises(ProtocolOrderError, match="AdvertiseKeys first"):
        clients[0].share_keys(RunContext(run_id, PURPOSE, 1), {})
    parameters = parameters_for(clients, task)
    clients[0].advertise_keys(RunContext(run_id, PURPOSE, 1), task, parameters)
    with pytest.raises(ProtocolOrderError):  # the same round again: a replay
        clients[0].advertise_keys(RunContext(run_id, PURPOSE, 1), task, parameters)
    with pytest.raises(ProtocolOrderError):
        clients[0].unmask(RunContext(run_id, PURPOSE, 1), {})


def test_a_cohort_below_the_policy_minimum_is_refused(live_nodes: dict[str, LiveNode], city: City) -> None:
    clients = [node.client(city) for node in live_nodes.values()]
    task = scaled_task(clients, small_task(rounds=1))
    run_id = accepted(clients, task)
    pair = parameters_for(clients[:2], task, threshold=2)
    with pytest.raises(PolicyDenied, match="cohort of at least"):
        clients[0].advertise_keys(RunContext(run_id, PURPOSE, 1), task, pair)


def test_statistics_summed_securely_equal_the_plain_sums(live_nodes: dict[str, LiveNode], city: City) -> None:
    from federation.experiments.scaling import global_scaling, secure_statistics
    from federation.experiments.topologies import schema_from_description

    clients = [node.client(city) for node in live_nodes.values()]
    task = small_task()
    schema = schema_from_description(clients[0].describe(RunContext("d", PURPOSE)), task.target)
    plain_id, secure_id = f"plain-{uuid.uuid4().hex[:6]}", f"secure-{uuid.uuid4().hex[:6]}"
    assert negotiate(clients, RunContext(plain_id, PURPOSE), task, release="stats").can_start
    plain = [c.stats(RunContext(plain_id, PURPOSE), task) for c in clients]
    assert negotiate(clients, RunContext(secure_id, PURPOSE), task, release="stats").can_start
    summed = secure_statistics(clients, task, schema, run_id=secure_id, purpose=PURPOSE, settings=SETTINGS)
    assert summed is not None and summed.columns == plain[0].columns
    assert summed.count == tuple(int(x) for x in np.sum([p.count for p in plain], axis=0))
    np.testing.assert_allclose(summed.sum, np.sum([p.sum for p in plain], axis=0), rtol=1e-5, atol=1e-3)
    # Fixed point over a public bound R^2 per column: the encoding step is about M * R^2 / 2^31 per node,
    # so sums of squares of a wide-range field agree to a few parts in 10^4 (harmless for scaling).
    np.testing.assert_allclose(summed.sum_squares, np.sum([p.sum_squares for p in plain], axis=0), rtol=2e-3)
    for column, (_edges, counts) in summed.histograms.items():
        assert counts == tuple(int(x) for x in np.sum([p.histograms[column][1] for p in plain], axis=0)), column
    # and through the comparison's own entry point, which picks the secure path for mode "always"
    scaled, _, stats = global_scaling(
        clients, task, run_id=f"g-{uuid.uuid4().hex[:6]}", purpose=PURPOSE, secure=SETTINGS, secure_mode="always", schema=schema
    )
    assert len(stats) == 1 and scaled.scaling is not None


def test_evaluation_summed_securely_equals_the_sum_of_per_node_evaluations(live_nodes: dict[str, LiveNode], city: City) -> None:
    from federation.coordinator.run import SECURE_COHORT, evaluate_everywhere, evaluate_securely
    from federation.models.evaluation import total

    clients = [node.client(city) for node in live_nodes.values()]
    task = scaled_task(clients, small_task(rounds=2))
    model = initial_model(task)
    run_id = accepted(clients, task)
    failures: list[dict[str, object]] = []
    plain = total(evaluate_everywhere(clients, RunContext(run_id, PURPOSE, 1), task, model, failures)[0].values())
    summed, _ = evaluate_securely(clients, RunContext(run_id, PURPOSE, 2), task, model, SETTINGS, failures)
    assert failures == []
    secure = summed[SECURE_COHORT]
    assert (secure.count, secure.correct, secure.positives) == (plain.count, plain.correct, plain.positives)
    assert secure.positive_histogram == plain.positive_histogram and secure.negative_histogram == plain.negative_histogram
    assert secure.loss_sum == pytest.approx(plain.loss_sum, rel=1e-4)


def test_the_coordinator_cannot_count_itself_as_a_party(live_nodes: dict[str, LiveNode], city: City) -> None:
    from fedkit import COORDINATOR

    clients = [node.client(city) for node in live_nodes.values()]
    task = scaled_task(clients, small_task(rounds=1))
    run_id = accepted(clients, task)
    with_itself = replace(parameters_for(clients, task), participants=(*(c.node_id for c in clients), COORDINATOR))
    with pytest.raises(CohortRejected, match="lists itself"):
        clients[0].advertise_keys(RunContext(run_id, PURPOSE, 1), task, with_itself)


def test_validation_sums_are_summed_securely_beside_the_test_sums(live_nodes: dict[str, LiveNode], city: City) -> None:
    from federation.coordinator.run import SECURE_COHORT, evaluate_everywhere, evaluate_securely
    from federation.models.evaluation import total

    clients = [node.client(city) for node in live_nodes.values()]
    task = replace(scaled_task(clients, small_task(rounds=2)), validation_fraction=0.2)
    model = initial_model(task)
    run_id = accepted(clients, task)
    failures: list[dict[str, object]] = []
    _, plain = evaluate_everywhere(clients, RunContext(run_id, PURPOSE, 1), task, model, failures)
    _, summed = evaluate_securely(clients, RunContext(run_id, PURPOSE, 2), task, model, SETTINGS, failures)
    assert failures == [] and set(plain) == set(live_nodes)
    expected, secure = total(plain.values()), summed[SECURE_COHORT]
    assert (secure.count, secure.positives) == (expected.count, expected.positives)
    assert secure.loss_sum == pytest.approx(expected.loss_sum, rel=1e-4)
