"""Federated rounds through Flower's strategies over real gRPC nodes."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fedkit import COORDINATOR, PURPOSE, City, LiveNode, scaled_task, serve, small_task

from federation.coordinator.checkpoint import load_checkpoint
from federation.coordinator.client import NodeClient
from federation.coordinator.negotiate import negotiate
from federation.coordinator.run import run_federated
from federation.experiments.topologies import initial_model
from federation.task import RunContext


def test_global_scaling_equals_pooled_statistics(live_nodes: dict[str, LiveNode], city: City) -> None:
    clients = [node.client(city) for node in live_nodes.values()]
    task = scaled_task(clients, small_task())
    run_id = f"pool-{uuid.uuid4().hex[:6]}"
    for client in clients:
        assert client.propose(RunContext(run_id, PURPOSE), task, cohort_size=3, release="raw").accepted
    frames = [c.export(RunContext(run_id, PURPOSE), task).to_pandas() for c in clients]
    pooled = np.concatenate([f["cod"].to_numpy() for f in frames])
    index = task.scaling.columns.index("cod")  # type: ignore[union-attr]
    assert task.scaling.mean[index] == pytest.approx(pooled.mean(), rel=1e-9)  # type: ignore[union-attr]
    assert task.scaling.std[index] == pytest.approx(pooled.std(), rel=1e-9)  # type: ignore[union-attr]


def test_fedavg_through_the_grid_is_the_example_weighted_mean(
    live_nodes: dict[str, LiveNode], city: City, tmp_path: Path
) -> None:
    clients = [node.client(city) for node in live_nodes.values()]
    task = scaled_task(clients, small_task(rounds=1))
    initial = initial_model(task)
    run_id, reference_id = f"fed-{uuid.uuid4().hex[:6]}", f"ref-{uuid.uuid4().hex[:6]}"
    for rid in (run_id, reference_id):
        assert negotiate(clients, RunContext(rid, PURPOSE), task, release="update").can_start
    outcome = run_federated(
        clients, task, initial, run_id=run_id, purpose=PURPOSE, strategy="fedavg", proximal_mu=0.0, checkpoint_dir=tmp_path
    )
    rounds, failures, _ = outcome.rounds, outcome.failures, outcome.secure_rounds
    assert failures == []
    assert len(rounds) == 1 and set(rounds[0]) == set(live_nodes)
    aggregated = load_checkpoint(tmp_path / "round-0001.npz")
    # The same round, trained by each node on its own (same seeds), then averaged by hand.
    outcomes = [c.fit(RunContext(reference_id, PURPOSE, 1), task, initial) for c in clients]
    weights = np.array([o.num_examples for o in outcomes], dtype=np.float64)
    for index, (name, array) in enumerate(aggregated):
        expected = sum(w * o.arrays[index][1] for w, o in zip(weights, outcomes, strict=True)) / weights.sum()
        assert name == outcomes[0].arrays[index][0]
        np.testing.assert_allclose(array, expected, rtol=1e-5, atol=1e-6)


def test_federated_training_improves_and_fedprox_runs(live_nodes: dict[str, LiveNode], city: City) -> None:
    clients = [node.client(city) for node in live_nodes.values()]
    task = scaled_task(clients, small_task(rounds=4))
    for strategy, mu in (("fedavg", 0.0), ("fedprox", 0.1)):
        run_id = f"{strategy}-{uuid.uuid4().hex[:6]}"
        run_task = replace(task, proximal_mu=mu)
        assert negotiate(clients, RunContext(run_id, PURPOSE), run_task, release="update").can_start
        outcome = run_federated(
            clients,
            run_task,
            initial_model(run_task),
            run_id=run_id,
            purpose=PURPOSE,
            strategy=strategy,
            proximal_mu=mu,
            checkpoint_dir=None,
        )
        rounds, failures, _ = outcome.rounds, outcome.failures, outcome.secure_rounds
        assert failures == [] and len(rounds) == 4
        loss_first = sum(s.loss_sum for s in rounds[0].values())
        loss_last = sum(s.loss_sum for s in rounds[-1].values())
        assert loss_last < loss_first


def test_a_node_that_dies_mid_run_is_recorded_and_the_run_completes(fresh_city: City) -> None:
    nodes = [serve(fresh_city, party) for party in ("central-district", "north-district", "hills-district")]
    clients = [NodeClient(n.node_id, n.address, fresh_city.identity(COORDINATOR), timeout=20) for n in nodes]
    try:
        task = scaled_task(clients, small_task(rounds=3))
        run_id = f"drop-{uuid.uuid4().hex[:6]}"
        assert negotiate(clients, RunContext(run_id, PURPOSE), task, release="update").can_start

        def stop_after_first_round(round_: int, sums: object) -> None:
            if round_ == 1:
                nodes[2].server.stop(0)

        outcome = run_federated(
            clients,
            task,
            initial_model(task),
            run_id=run_id,
            purpose=PURPOSE,
            strategy="fedavg",
            proximal_mu=0.0,
            checkpoint_dir=None,
            on_round=stop_after_first_round,
        )
        rounds, failures, _ = outcome.rounds, outcome.failures, outcome.secure_rounds
        assert len(rounds) == 3
        assert "hills-district" in rounds[0] and "hills-district" not in rounds[-1]
        assert {f["node"] for f in failures} == {"hills-district"}
        assert {f["rpc"] for f in failures} == {"Fit", "Evaluate"}
    finally:
        for node in nodes:
            node.server.stop(0)
