"""Secure aggregation across node processes, one of which is killed mid-round."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from fedkit import COORDINATOR, PURPOSE, City, scaled_task, small_task

from federation.coordinator.client import NodeClient
from federation.coordinator.grid import SecureSettings
from federation.coordinator.negotiate import negotiate
from federation.coordinator.secure_round import run_secure_round
from federation.experiments.launcher import start_nodes, stop_nodes
from federation.experiments.topologies import initial_model
from federation.task import RunContext

pytestmark = pytest.mark.slow
PARTIES = ("central-district", "north-district", "hills-district", "river-district")


def test_round_completes_with_the_right_sum_when_a_node_dies_during_masked_update(fresh_city: City) -> None:
    nodes = start_nodes({p: fresh_city.manifest(p) for p in PARTIES}, fresh_city.root / "node-logs")
    try:
        clients = [NodeClient(n.node_id, n.address, fresh_city.identity(COORDINATOR), timeout=30) for n in nodes]
        task = scaled_task(clients, small_task(rounds=1))
        initial = initial_model(task)
        secure_id, plain_id = f"sec-{uuid.uuid4().hex[:6]}", f"ref-{uuid.uuid4().hex[:6]}"
        for run_id in (secure_id, plain_id):
            assert negotiate(clients, RunContext(run_id, PURPOSE), task, release="masked-update").can_start
        victim = nodes[1]

        def kill_before(rpc: str) -> None:
            if rpc == "MaskedUpdate":
                victim.process.kill()
                victim.process.wait()

        parameters = SecureSettings(clip=1.0, max_weight=4096.0).parameters([c.node_id for c in clients], initial)
        outcome = run_secure_round(
            clients, RunContext(secure_id, PURPOSE, 1), task, initial, parameters, before_phase=kill_before
        )
        assert outcome.aborted == ""
        assert outcome.dropouts == {"masked-update": [victim.node_id]}
        assert sorted(outcome.survivors) == sorted(p for p in PARTIES if p != victim.node_id)
        assert any(e["node"] == victim.node_id and e["rpc"] == "MaskedUpdate" for e in outcome.errors)

        survivors = [c for c in clients if c.node_id != victim.node_id]
        fits = [c.fit(RunContext(plain_id, PURPOSE, 1), task, initial) for c in survivors]
        weights = np.array([f.num_examples for f in fits], dtype=np.float64)
        assert outcome.total_weight == pytest.approx(weights.sum(), abs=1e-3)
        assert outcome.arrays is not None
        for index, (_, array) in enumerate(outcome.arrays):
            expected = sum(w * f.arrays[index][1] for w, f in zip(weights, fits, strict=True)) / weights.sum()
            np.testing.assert_allclose(array, expected, atol=1e-5)
    finally:
        stop_nodes(nodes)


def test_round_aborts_cleanly_below_the_threshold(fresh_city: City) -> None:
    nodes = start_nodes({p: fresh_city.manifest(p) for p in PARTIES}, fresh_city.root / "node-logs")
    try:
        clients = [NodeClient(n.node_id, n.address, fresh_city.identity(COORDINATOR), timeout=30) for n in nodes]
        task = scaled_task(clients, small_task(rounds=1))
        run_id = f"sec-{uuid.uuid4().hex[:6]}"
        assert negotiate(clients, RunContext(run_id, PURPOSE), task, release="masked-update").can_start

        def kill_two(rpc: str) -> None:
            if rpc == "ShareKeys":
                for victim in nodes[:2]:
                    victim.process.kill()
                    victim.process.wait()

        initial = initial_model(task)
        parameters = SecureSettings(clip=1.0, max_weight=4096.0).parameters([c.node_id for c in clients], initial)
        outcome = run_secure_round(clients, RunContext(run_id, PURPOSE, 1), task, initial, parameters, before_phase=kill_two)
        assert outcome.arrays is None
        assert "below the threshold" in outcome.aborted
        assert outcome.dropouts == {"share-keys": [nodes[0].node_id, nodes[1].node_id]}
    finally:
        stop_nodes(nodes)
