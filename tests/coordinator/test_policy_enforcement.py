"""Policies enforced by real nodes over gRPC: refusals, audit entries, budgets across restarts."""

from __future__ import annotations

import json
import uuid

import pytest
from fedkit import PURPOSE, STRANGER, City, LiveNode, scaled_task, serve, small_task

from federation.coordinator.negotiate import negotiate
from federation.errors import BudgetExhausted, PolicyDenied
from federation.experiments.topologies import initial_model
from federation.task import PrivacySpec, RunContext


def audit_entries(city: City, party: str) -> list[dict[str, object]]:
    path = city.root / ".federation" / "state" / party / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_an_unlisted_caller_is_refused_and_audited(live_nodes: dict[str, LiveNode], city: City) -> None:
    run_id = f"stranger-{uuid.uuid4().hex[:6]}"
    with pytest.raises(PolicyDenied):
        live_nodes["hills-district"].client(city, STRANGER).describe(RunContext(run_id, PURPOSE))
    entry = next(e for e in audit_entries(city, "hills-district") if e["run_id"] == run_id)
    assert entry["caller"] == STRANGER and entry["rpc"] == "Describe" and entry["decision"] == "deny"
    assert any(STRANGER in str(r) for r in entry["reasons"])  # type: ignore[union-attr]


def test_every_call_leaves_a_verifiable_entry(live_nodes: dict[str, LiveNode], city: City) -> None:
    from federation.node.audit import verify

    client = live_nodes["north-district"].client(city)
    task = small_task()
    run_id = f"audit-{uuid.uuid4().hex[:6]}"
    assert client.propose(RunContext(run_id, PURPOSE), task, cohort_size=3, release="raw").accepted
    table = client.export(RunContext(run_id, PURPOSE), task)
    mine = [e for e in audit_entries(city, "north-district") if e["run_id"] == run_id]
    assert [e["rpc"] for e in mine] == ["Propose", "Export"]
    assert mine[1]["rows"] == table.num_rows and int(mine[1]["bytes_released"]) > 0  # type: ignore[arg-type]
    assert verify(city.root / ".federation" / "state" / "north-district").intact


DP_POLICY = """
party = "north-district"
default = "deny"

[[rule]]
name = "private model"
recipients = ["city-platform"]
purposes = ["pollution-enforcement"]
release = "update"
min_cohort = 1
dp = {{ epsilon = {epsilon}, delta = 1e-5, clip = 1.0 }}
"""


def test_a_spent_budget_stays_spent_after_a_restart(fresh_city: City) -> None:
    fresh_city.policy("north-district").write_text(DP_POLICY.format(epsilon=2.0))
    node = serve(fresh_city, "north-district")
    client = node.client(fresh_city)
    task = scaled_task([client], small_task(rounds=2))  # the scaling is part of the task a node accepts
    first = f"dp-{uuid.uuid4().hex[:6]}"
    answer = client.propose(RunContext(first, PURPOSE), task, cohort_size=1, release="update")
    assert answer.accepted and answer.noise_multiplier is not None and answer.epsilon_budget == 2.0
    scaled = task.__class__(**{**task.__dict__, "privacy": PrivacySpec(answer.noise_multiplier, 1.0)})
    arrays = initial_model(scaled)
    for round_ in (1, 2):
        client.fit(RunContext(first, PURPOSE, round_), scaled, arrays)
    assert client.describe(RunContext(first, PURPOSE)).epsilon_spent == pytest.approx(2.0, rel=0.01)
    node.server.stop(0)

    restarted = serve(fresh_city, "north-district")  # same state directory, new process state
    try:
        client = restarted.client(fresh_city)
        assert client.describe(RunContext(first, PURPOSE)).epsilon_spent == pytest.approx(2.0, rel=0.01)
        second = f"dp-{uuid.uuid4().hex[:6]}"
        refused = client.propose(RunContext(second, PURPOSE), task, cohort_size=1, release="update")
        assert not refused.accepted and refused.budget_exhausted
        assert any("budget spent" in r for r in refused.reasons)
        with pytest.raises(BudgetExhausted):
            client.fit(RunContext(first, PURPOSE, 3), scaled, arrays)
    finally:
        restarted.server.stop(0)


def test_a_task_without_the_required_privacy_is_refused(fresh_city: City) -> None:
    fresh_city.policy("north-district").write_text(DP_POLICY.format(epsilon=8.0))
    node = serve(fresh_city, "north-district")
    try:
        client = node.client(fresh_city)
        task = scaled_task([client], small_task(rounds=2))
        run_id = f"nodp-{uuid.uuid4().hex[:6]}"
        assert negotiate([client], RunContext(run_id, PURPOSE), task, release="update").privacy is not None
        with pytest.raises(PolicyDenied, match="requires differential privacy"):
            client.fit(RunContext(run_id, PURPOSE, 1), task, initial_model(task))
        weak = task.__class__(**{**task.__dict__, "privacy": PrivacySpec(0.1, 1.0)})
        with pytest.raises(PolicyDenied, match="noise multiplier"):
            client.fit(RunContext(run_id, PURPOSE, 2), weak, initial_model(task))
        assert client.describe(RunContext(run_id, PURPOSE)).epsilon_spent == 0.0  # refused before any charge
    finally:
        node.server.stop(0)


def test_nodes_count_the_cohort_themselves_before_unmasking(fresh_city: City) -> None:
    """The coordinator announces four parties; one drops; three survive the threshold but not the policy."""
    from federation.coordinator.grid import SecureSettings
    from federation.coordinator.secure_round import run_secure_round

    parties = ("central-district", "north-district", "hills-district", "river-district")
    for party in parties:
        policy = fresh_city.policy(party)
        text = policy.read_text()
        policy.write_text(text.replace("min_cohort = 3", "min_cohort = 4").replace("min_cohort = 2", "min_cohort = 4"))
    nodes = [serve(fresh_city, party) for party in parties]
    try:
        clients = [node.client(fresh_city) for node in nodes]
        task = scaled_task(clients, small_task(rounds=1))
        run_id = f"cohort-{uuid.uuid4().hex[:6]}"
        assert negotiate(clients, RunContext(run_id, PURPOSE), task, release="masked-update").min_cohort == 4
        initial = initial_model(task)
        parameters = SecureSettings(clip=1.0, max_weight=4096.0, threshold=3).parameters([c.node_id for c in clients], initial)

        def drop_one(rpc: str) -> None:
            if rpc == "MaskedUpdate":
                nodes[0].server.stop(0)

        outcome = run_secure_round(clients, RunContext(run_id, PURPOSE, 1), task, initial, parameters, before_phase=drop_one)
        assert outcome.arrays is None and "did not confirm the survivor set" in outcome.aborted
        refusals = [e for e in outcome.errors if e["rpc"] == "ConfirmSurvivors"]
        assert len(refusals) == 3 and all("fewer than this node's minimum of 4" in str(e["error"]) for e in refusals)
    finally:
        for node in nodes:
            node.server.stop(0)


def test_record_level_dp_trains_through_opacus_and_charges_the_ledger(fresh_city: City) -> None:
    policy = DP_POLICY.format(epsilon=4.0).replace("clip = 1.0 }", 'clip = 1.0, level = "record" }')
    fresh_city.policy("north-district").write_text(policy)
    node = serve(fresh_city, "north-district")
    try:
        client = node.client(fresh_city)
        task = scaled_task([client], small_task(rounds=2))
        run_id = f"dpsgd-{uuid.uuid4().hex[:6]}"
        answer = client.propose(RunContext(run_id, PURPOSE), task, cohort_size=1, release="update")
        assert answer.accepted and answer.dp_level == "record" and answer.noise_multiplier is not None
        negotiation = negotiate([client], RunContext(f"n-{run_id}", PURPOSE), task, release="update")
        assert negotiation.privacy is None  # record-level noise is the node's own, not the run's
        initial = initial_model(task)
        outcome = client.fit(RunContext(run_id, PURPOSE, 1), task, initial)
        assert any(abs(a - b).max() > 0 for (_, a), (_, b) in zip(outcome.arrays, initial, strict=True))
        spent_after_one = client.describe(RunContext(run_id, PURPOSE)).epsilon_spent
        client.fit(RunContext(run_id, PURPOSE, 2), task, outcome.arrays)
        spent_after_two = client.describe(RunContext(run_id, PURPOSE)).epsilon_spent
        assert 0 < spent_after_one < spent_after_two <= 4.0
    finally:
        node.server.stop(0)
