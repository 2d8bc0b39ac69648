"""The city platform as the adversary: a coordinator that deviates on purpose, against real node processes.

Five districts run as `federation node serve` processes under the strict
preset (masked, differentially private updates only, min cohort 4). The
coordinator's side is written here with the project's own client and
secure-aggregation classes, misbehaving: it holds the federation's CA key
(as a city platform running the PKI would), invents participants, tells
nodes different stories about who survived, and uses Evaluate and purpose
strings to read more than the policy releases. Every attack must fail
closed, and be audited on the node.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fedkit import COORDINATOR, PURPOSE, REPO, City, build_city, scaled_task, small_task

from federation.coordinator.client import NodeClient
from federation.coordinator.grid import SecureSettings
from federation.coordinator.negotiate import negotiate
from federation.coordinator.run import evaluate_securely
from federation.errors import CohortRejected, PolicyDenied, ProtocolOrderError
from federation.experiments.launcher import NodeProcess, start_nodes, stop_nodes
from federation.experiments.topologies import initial_model
from federation.models.evaluation import bounded_length
from federation.secagg.client import SecAggClient
from federation.secagg.cohort import Advert
from federation.secagg.server import SecAggServer
from federation.task import FeatureScaling, RunContext, TaskSpec
from federation.trust.authority import cert_pem, key_pem, new_certificate, throwaway_cohort
from federation.trust.certificates import Credentials

pytestmark = pytest.mark.slow
DISTRICTS = ("central-district", "north-district", "hills-district", "river-district", "east-district")
SETTINGS = SecureSettings(clip=1.0, max_weight=4096.0)


class AcceptAnything:
    """The attacker's own 'verification' for the participants it simulates."""

    def verify(self, name: str, certificate_der: bytes, message: bytes, signature: bytes) -> str:
        return name


@pytest.fixture(scope="module")
def strict_city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[City, list[NodeClient]]]:
    city = build_city(tmp_path_factory.mktemp("strict-city"))
    strict = REPO / "policies" / "presets" / "strict.toml"
    nodes: list[NodeProcess] = start_nodes({p: city.manifest(p) for p in DISTRICTS}, city.root / "node-logs", policy=strict)
    clients = [NodeClient(n.node_id, n.address, city.identity(COORDINATOR), timeout=60) for n in nodes]
    try:
        yield city, clients
    finally:
        stop_nodes(nodes)


def accepted_run(clients: list[NodeClient], task: TaskSpec) -> tuple[str, TaskSpec]:
    """Propose honestly; returns the run id and the task with the noise every node demands."""
    run_id = f"attack-{uuid.uuid4().hex[:8]}"
    negotiation = negotiate(clients, RunContext(run_id, PURPOSE), task, release="masked-update")
    assert negotiation.can_start and negotiation.privacy is not None, negotiation.refusals
    return run_id, replace(task, privacy=negotiation.privacy)


def minted_by_the_coordinator(city: City, names: list[str]) -> dict[str, Credentials]:
    """Certificates the coordinator issues with the federation's own CA key, never written to disk."""
    ca = x509.load_pem_x509_certificate((city.pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((city.pki / "ca.key").read_bytes(), password=None)
    minted = {}
    for name in names:
        certificate, key = new_certificate(ca, ca_key, name, days=1)  # type: ignore[arg-type]
        minted[name] = Credentials.from_pem(cert_pem(certificate), key_pem(key))
    return minted


def audit_entries(city: City, party: str, rpc: str) -> list[dict[str, object]]:
    path = city.root / ".federation" / "state" / party / "audit.jsonl"
    return [e for e in map(json.loads, path.read_text().splitlines()) if e.get("rpc") == rpc]


def invent_a_cohort(
    city: City, victim: NodeClient, task: TaskSpec, run_id: str, fakes: dict[str, Credentials], *, payload: str = "update"
) -> None:
    """One real node, three made-up participants: the coordinator plays the fakes itself."""
    participants = (victim.node_id, *fakes)
    arrays = initial_model(task)
    base = SETTINGS.parameters(list(participants), arrays, privacy=task.privacy)
    parameters = base if payload == "update" else replace(base, vector_length=bounded_length() + 1, payload=payload)
    context = RunContext(run_id, PURPOSE, 1)
    config = parameters.config(run_id, 1, caller=COORDINATOR)
    server = SecAggServer(config)
    simulated = {
        i: SecAggClient(config, i, signer=fakes[name], peers=AcceptAnything(), min_cohort=1)
        for i, name in enumerate(participants)
        if i > 0
    }
    adverts: dict[int, Advert] = {0: victim.advertise_keys(context, task, parameters)}
    adverts.update({i: c.advertise() for i, c in simulated.items()})
    everyone = server.collect_keys(adverts)
    with pytest.raises(CohortRejected) as refused:
        victim.share_keys(context, everyone)  # the real node checks every participant before sharing anything
    assert victim.node_id not in refused.value.public
    with pytest.raises(ProtocolOrderError):  # the round is over for it: no masked input, no shares, ever
        victim.masked_update(context, task, {}, arrays)


def test_participants_minted_with_the_federations_own_ca_are_not_counted(strict_city: tuple[City, list[NodeClient]]) -> None:
    city, clients = strict_city
    victim = clients[1]
    task = scaled_task(clients, small_task(rounds=3))
    run_id, task = accepted_run(clients, task)
    invent_a_cohort(city, victim, task, run_id, minted_by_the_coordinator(city, ["fake-1", "fake-2", "fake-3"]))
    (entry,) = [e for e in audit_entries(city, victim.node_id, "ShareKeys") if e["run_id"] == run_id]
    assert entry["decision"] == "error" and "not among the parties this node accepts" in str(entry["reasons"])


def test_a_second_certificate_in_a_real_partys_name_is_not_counted(strict_city: tuple[City, list[NodeClient]]) -> None:
    """The coordinator holds the CA, so it can issue 'hills-district' a certificate of its own: the pin tells them apart."""
    city, clients = strict_city
    victim = clients[0]
    task = scaled_task(clients, small_task(rounds=3))
    run_id, task = accepted_run(clients, task)
    impostors = minted_by_the_coordinator(city, ["north-district", "hills-district", "river-district"])
    invent_a_cohort(city, victim, task, run_id, impostors)
    (entry,) = [e for e in audit_entries(city, victim.node_id, "ShareKeys") if e["run_id"] == run_id]
    assert "not the one pinned for it" in str(entry["reasons"])


def test_participants_from_another_ca_are_not_counted(strict_city: tuple[City, list[NodeClient]]) -> None:
    city, clients = strict_city
    victim = clients[2]
    task = scaled_task(clients, small_task(rounds=3))
    run_id, task = accepted_run(clients, task)
    foreign, _ = throwaway_cohort(["fake-4", "fake-5", "fake-6"])
    invent_a_cohort(city, victim, task, run_id, foreign)


def test_different_survivor_sets_told_to_different_nodes_reveal_nothing(strict_city: tuple[City, list[NodeClient]]) -> None:
    """Bonawitz's consistency check: node 0 is told {0,1,2,3}, node 1 {0,1,2,4}; nobody unmasks."""
    city, clients = strict_city
    task = scaled_task(clients, small_task(rounds=3))
    run_id, task = accepted_run(clients, task)
    arrays = initial_model(task)
    parameters = SETTINGS.parameters([c.node_id for c in clients], arrays, privacy=task.privacy)
    server = SecAggServer(parameters.config(run_id, 1, caller=COORDINATOR))
    context = RunContext(run_id, PURPOSE, 1)
    adverts = server.collect_keys({i: c.advertise_keys(context, task, parameters) for i, c in enumerate(clients)})
    routed = server.route_shares({i: c.share_keys(context, adverts) for i, c in enumerate(clients)})
    server.collect_masked({i: c.masked_update(context, task, routed[i], arrays) for i, c in enumerate(clients)})
    story_a, story_b = frozenset({0, 1, 2, 3}), frozenset({0, 1, 2, 4})
    signatures = {i: clients[i].confirm_survivors(context, story_a) for i in (0, 2, 3)}
    signatures[1] = clients[1].confirm_survivors(context, story_b)
    revealed = []
    for i in (0, 2, 3):
        with pytest.raises(CohortRejected, match="survivor sets differ"):
            revealed.append(clients[i].unmask(context, signatures))
    assert revealed == []
    for party in (clients[0].node_id, clients[2].node_id):
        (entry,) = [e for e in audit_entries(city, party, "Unmask") if e["run_id"] == run_id]
        assert entry["decision"] == "error" and "survivor sets differ" in str(entry["reasons"])


def test_evaluate_is_no_value_oracle_under_the_strict_preset(strict_city: tuple[City, list[NodeClient]]) -> None:
    """A one-feature model and chosen scalings used to read off every test record's (value, label)."""
    city, clients = strict_city
    victim = clients[3]
    task = scaled_task(clients, small_task(rounds=3))
    run_id, task = accepted_run(clients, task)
    arrays = initial_model(task)
    answers = []
    assert task.scaling is not None
    for shift in np.linspace(-2.0, 2.0, 12):  # the oracle: move the threshold across one feature's values
        probe = replace(
            task,
            scaling=FeatureScaling(
                task.scaling.columns, (task.scaling.mean[0] + shift, *task.scaling.mean[1:]), task.scaling.std
            ),
        )
        for attempt in (probe, task):
            try:
                answers.append(victim.evaluate(RunContext(run_id, PURPOSE, 1), attempt, arrays))
            except (PolicyDenied, ProtocolOrderError) as error:
                assert "summed by secure aggregation" in error.public or "differs from the one" in error.public
    with pytest.raises(PolicyDenied, match="summed by secure aggregation"):  # nor through local-only training
        island = f"island-{uuid.uuid4().hex[:6]}"
        assert victim.propose(RunContext(island, PURPOSE), task, cohort_size=5, release="stats").accepted
        list(victim.train_local(RunContext(island, PURPOSE), task))
    assert answers == []  # not one node's own metrics left it
    # With invented co-contributors, a secure "eval" round with the one victim fails closed as well.
    invent_a_cohort(city, victim, task, run_id, minted_by_the_coordinator(city, ["fake-7", "fake-8", "fake-9"]), payload="eval")
    # Honestly, the cohort's sum is released once per accepted round, summed over every real party.
    failures: list[dict[str, object]] = []
    summed, _ = evaluate_securely(clients, RunContext(run_id, PURPOSE, 2), task, arrays, SETTINGS, failures)
    assert failures == [] and list(summed) == ["(cohort, summed securely)"]
    assert summed["(cohort, summed securely)"].count > 0
    again: list[dict[str, object]] = []
    assert evaluate_securely(clients, RunContext(run_id, PURPOSE, 2), task, arrays, SETTINGS, again) == ({}, {})
    assert any("already evaluated" in str(f["error"]) for f in again)
    # A smaller cohort in a later round could be differenced against the first: refused.
    other: list[dict[str, object]] = []
    assert evaluate_securely(clients[:4], RunContext(run_id, PURPOSE, 3), task, arrays, SETTINGS, other) == ({}, {})
    assert any("fixed parties" in str(f["error"]) for f in other)


def test_renaming_the_purpose_buys_no_fresh_budget(strict_city: tuple[City, list[NodeClient]]) -> None:
    """The strict rule covers purposes = ["*"]: every purpose string draws on the one budget of the rule."""
    _, clients = strict_city
    spent = {}
    for purpose in (PURPOSE, "renamed-purpose", f"fresh-{uuid.uuid4().hex[:6]}"):
        description = clients[0].describe(RunContext("look", purpose))
        spent[purpose] = description.epsilon_spent
    assert spent[PURPOSE] > 0  # the masked updates above were charged
    assert len(set(spent.values())) == 1, spent
    task = scaled_task(clients, small_task(rounds=3))
    answers = [
        c.propose(RunContext(f"renamed-{uuid.uuid4().hex[:6]}", "renamed-purpose"), task, cohort_size=5, release="masked-update")
        for c in clients[:1]
    ]
    assert answers[0].epsilon_spent == pytest.approx(spent[PURPOSE])


def test_a_refused_call_consumes_neither_a_round_nor_budget(strict_city: tuple[City, list[NodeClient]]) -> None:
    _, clients = strict_city
    task = scaled_task(clients, small_task(rounds=3))
    run_id, task = accepted_run(clients, task)
    before = clients[4].describe(RunContext("look", PURPOSE)).epsilon_spent
    arrays = initial_model(task)
    with pytest.raises(PolicyDenied):  # a plain Fit is above the strict release level
        clients[4].fit(RunContext(run_id, PURPOSE, 1), task, arrays)
    too_small = SETTINGS.parameters([c.node_id for c in clients[:2]], arrays, privacy=task.privacy)
    with pytest.raises(PolicyDenied, match="cohort of at least"):
        clients[4].advertise_keys(RunContext(run_id, PURPOSE, 1), task, too_small)
    assert clients[4].describe(RunContext("look", PURPOSE)).epsilon_spent == pytest.approx(before)
    full = SETTINGS.parameters([c.node_id for c in clients], arrays, privacy=task.privacy)
    clients[4].advertise_keys(RunContext(run_id, PURPOSE, 1), task, full)  # round 1 is still open to the honest call
