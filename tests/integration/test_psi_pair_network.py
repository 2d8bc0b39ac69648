"""Two-party PSI in sealed chunks over real gRPC: exact, and a relaying coordinator that deviates gets nothing.

Two nodes of the SYNTHETIC two-register city (examples/psi_pair) serve in
this process with their own manifests, policies, pinned certificates,
audit logs and state directories. Chunks are made small, so every step
spans several messages. The test plays the city platform: honest first,
then replaying, splicing and re-ordering chunks, and a fellow party with a
valid certificate that asks for the chunks itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fedkit import load_script, serving_in_process

from federation.coordinator.client import NodeClient
from federation.coordinator.psi import run_psi
from federation.errors import FederationError, PolicyDenied, ProtocolOrderError
from federation.experiments.launcher import prepare_identities
from federation.experiments.psi_config import load_psi_experiment
from federation.node.audit_chain import read_entries
from federation.node.manifest import load_manifest
from federation.node.psi_handlers import shared_keys
from federation.psi import pair
from federation.task import RunContext
from federation.transport.tls import Identity

GENERATOR = load_script(Path(__file__).resolve().parents[2] / "examples" / "psi_pair" / "generate.py", "psi_pair_generate")
RECEIVER, SENDER = GENERATOR.RECEIVER, GENERATOR.SENDER
City = tuple[dict[str, NodeClient], dict[str, Path], Path]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    patch = pytest.MonkeyPatch()
    patch.setattr(pair, "CHUNK", 500)  # the nodes serve in this process: every step spans several chunks
    root = tmp_path_factory.mktemp("psi_pair_city")
    GENERATOR.generate(root, keys=1800, overlap=0.4, seed=3)
    experiment = load_psi_experiment(root / "psi.toml")
    manifests = {n: m for n, _, m in experiment.nodes if m is not None}
    prepare_identities(experiment.pki_dir, manifests, experiment.coordinator)
    with serving_in_process(manifests, experiment.pki_dir, experiment.coordinator) as clients:
        yield clients, manifests, root
    patch.undo()


def plaintext(root: Path) -> set[str]:
    registers = [
        {line.split(",")[0] for line in (root / "data" / f"{p}.csv").read_text().splitlines()[1:]} for p in (RECEIVER, SENDER)
    ]
    return registers[0] & registers[1]


def joined(clients: dict[str, NodeClient], root: Path) -> RunContext:
    experiment = load_psi_experiment(root / "psi.toml")
    terms = experiment.new_terms()
    context = RunContext(terms.run_id, experiment.purpose)
    adverts = {n: c.psi_join(context, terms) for n, c in clients.items()}
    for client in clients.values():
        client.psi_admit(context, adverts)
    return context


def test_two_nodes_find_exactly_the_plaintext_join_in_chunks_and_audit_every_step(city: City) -> None:
    clients, manifests, root = city
    outcome = run_psi(clients, load_psi_experiment(root / "psi.toml").new_terms(), purpose="register-match")
    truth = plaintext(root)
    kept = shared_keys(load_manifest(manifests[RECEIVER]).state_dir, outcome.terms.run_id)
    assert kept is not None and set(kept) == truth and outcome.count == len(truth) == 720
    assert shared_keys(load_manifest(manifests[SENDER]).state_dir, outcome.terms.run_id) is None  # granted nothing
    assert outcome.told == {RECEIVER: "membership", SENDER: "nothing"}
    total = sum(outcome.bytes_by_node.values())
    assert total < 45 * 2 * 1800  # 32 bytes a point each way, 12 a tag, chunk overheads: about 40 bytes per key
    for name, manifest in manifests.items():
        entries = [e for e in read_entries(load_manifest(manifest).state_dir) if e["run_id"] == outcome.terms.run_id]
        assert all(e["decision"] == "allow" for e in entries), name
        assert {"PsiStream", "PsiFeed"} <= {e["rpc"] for e in entries}
    said = [r for e in read_entries(load_manifest(manifests[RECEIVER]).state_dir) for r in e["reasons"]]
    assert f"learned which of its firms are shared: {len(truth)}" in said


def test_a_relay_that_replays_splices_or_reorders_chunks_is_refused_and_the_run_ends(city: City) -> None:
    clients, _, root = city
    context = joined(clients, root)
    mine = clients[RECEIVER].psi_stream(context, pair.OWN)
    assert len(mine) == 4 and {c[1] for c in mine} == {4}
    with pytest.raises(FederationError, match="chunk 1 of 4 arrived; chunk 0 of 4 was due"):
        clients[SENDER].psi_feed(context, pair.OWN, [mine[1], mine[0]])  # re-ordered
    with pytest.raises(ProtocolOrderError, match="no PSI run"):  # the failed step ended the run at that node
        clients[SENDER].psi_stream(context, pair.OWN)

    other = joined(clients, root)
    theirs = clients[RECEIVER].psi_stream(other, pair.OWN)
    context = joined(clients, root)
    with pytest.raises(FederationError, match="does not authenticate"):
        clients[SENDER].psi_feed(context, pair.OWN, theirs)  # spliced in from another run

    context = joined(clients, root)
    mine = clients[RECEIVER].psi_stream(context, pair.OWN)
    with pytest.raises(ProtocolOrderError, match="already sent"):
        clients[RECEIVER].psi_stream(context, pair.OWN)  # a second copy of the points is never made
    clients[SENDER].psi_feed(context, pair.OWN, mine)
    with pytest.raises(ProtocolOrderError, match="all answered already"):
        clients[SENDER].psi_feed(context, pair.OWN, mine[-1:])  # a replay is refused
    assert clients[RECEIVER].describe(RunContext("still-serving", "register-match")).node_id == RECEIVER


def test_a_fellow_party_with_a_valid_certificate_gets_no_chunk_and_a_step_out_of_order_gets_nothing(city: City) -> None:
    clients, manifests, root = city
    context = joined(clients, root)
    run_id = context.run_id
    pki = load_psi_experiment(root / "psi.toml").pki_dir
    peer = NodeClient(RECEIVER, clients[RECEIVER].address, Identity.in_directory(pki, SENDER), timeout=30)
    try:
        with pytest.raises(PolicyDenied, match="proposed by another caller"):
            peer.psi_stream(context, pair.OWN)  # the sender asking for the receiver's points itself
    finally:
        peer.close()
    with pytest.raises(ProtocolOrderError, match="not all arrived"):
        clients[SENDER].psi_stream(context, pair.ANSWER)  # answers before any question: the run ends there
    with pytest.raises(ProtocolOrderError, match="no PSI run"):
        clients[SENDER].psi_stream(context, pair.OWN)
    with pytest.raises(ProtocolOrderError, match="streams no 'delivery'"):
        clients[SENDER].psi_stream(joined(clients, root), pair.DELIVERY)  # a step of the other role
    entries = [e for e in read_entries(load_manifest(manifests[RECEIVER]).state_dir) if e["run_id"] == run_id]
    assert any(e["decision"] == "deny" and e["caller"] == SENDER for e in entries)
