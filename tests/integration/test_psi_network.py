"""PSI over real gRPC on localhost: the mass-balance city's five nodes, and a coordinator that deviates.

The nodes run their real manifests, policies, pinned certificates, audit
logs and state directories (copied into a temporary city); the test plays
the city platform, honest first, then replaying a run, inventing a party
and asking for a disclosure a policy refuses.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fedkit import load_script, serving_in_process

from federation.coordinator.client import NodeClient
from federation.coordinator.psi import run_psi
from federation.data.sources import read_table
from federation.errors import FederationError, InvalidRequest, PolicyDenied, ProtocolOrderError, RoundAborted
from federation.experiments.launcher import prepare_identities
from federation.experiments.psi_config import PsiExperiment, load_psi_experiment
from federation.node.audit_chain import read_entries
from federation.node.keys import prepare_rows
from federation.node.manifest import load_manifest
from federation.node.psi_handlers import shared_keys
from federation.psi.plan import Disclosure
from federation.psi.session import Party, Terms
from federation.task import RunContext
from federation.transport.tls import Identity, ensure_identities
from federation.trust.certificates import Credentials

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "mass_balance"
PURPOSE = "mass-balance"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PsiExperiment, dict[str, NodeClient], dict[str, Path]]]:
    root = tmp_path_factory.mktemp("mass_city")
    example = root / "examples" / "mass_balance"
    for folder in ("nodes", "policies", "schemas"):
        shutil.copytree(EXAMPLE / folder, example / folder)
    shutil.copy(EXAMPLE / "psi.toml", example / "psi.toml")
    load_script(EXAMPLE / "generate.py", "mass_balance_generate_net").generate(example / "data", firms=500, seed=3)
    experiment = load_psi_experiment(example / "psi.toml")
    manifests = {n: m for n, _, m in experiment.nodes if m is not None}
    prepare_identities(experiment.pki_dir, manifests, experiment.coordinator)
    ensure_identities(experiment.pki_dir, ["ghost-bureau"])  # a certificate of the same CA, pinned by no node
    with serving_in_process(manifests, experiment.pki_dir, experiment.coordinator) as clients:
        yield experiment, clients, manifests


def plaintext_join(manifests: dict[str, Path]) -> set[str]:
    sets = []
    for path in manifests.values():
        manifest = load_manifest(path)
        assert manifest.keys is not None
        sets.append(set(prepare_rows(read_table(manifest.data_path), manifest.keys, where=str(path)).distinct))
    return set.intersection(*sets)


def learned(manifest: Path, run_id: str) -> list[str] | None:
    return shared_keys(load_manifest(manifest).state_dir, run_id)


def test_five_nodes_find_exactly_the_plaintext_join_and_the_coordinator_learns_nothing_of_it(city) -> None:  # type: ignore[no-untyped-def]
    experiment, clients, manifests = city
    terms = experiment.new_terms()
    outcome = run_psi(clients, terms, purpose=PURPOSE)
    truth = plaintext_join(manifests)
    assert len(truth) > 100
    for name, manifest in manifests.items():
        assert set(learned(manifest, terms.run_id) or []) == truth, name  # 0 false positives, 0 false negatives
        entries = [e for e in read_entries(load_manifest(manifest).state_dir) if e["run_id"] == terms.run_id]
        assert entries[0]["rpc"] == "PsiJoin" and any("distinct keys" in r for r in entries[0]["reasons"])
        assert entries[-1]["reasons"][0] == f"learned which of its firms are shared: {len(truth)}"
    assert outcome.count is None and set(outcome.told.values()) == {"membership"}


def test_a_replayed_run_is_refused_by_every_node(city) -> None:  # type: ignore[no-untyped-def]
    experiment, clients, _ = city
    terms = experiment.new_terms()
    run_psi(clients, terms, purpose=PURPOSE)
    with pytest.raises(PolicyDenied) as refused:
        run_psi(clients, terms, purpose=PURPOSE)
    assert str(refused.value).count("was already run here") == 5


def test_a_disclosure_one_policy_refuses_stops_the_run_before_any_key_is_hashed(city) -> None:  # type: ignore[no-untyped-def]
    experiment, clients, manifests = city
    asked = experiment.new_terms()
    greedy = replace(asked, disclosure=Disclosure(asked.disclosure.membership, ("coordinator",)))
    with pytest.raises(PolicyDenied) as refused:
        run_psi(clients, greedy, purpose=PURPOSE)
    text = str(refused.value)
    assert "power-utility: power-utility: rule 'mass balance: find the shared firms' does not name the coordinator" in text
    assert "ecology-bureau" not in text  # the departments' clauses allow the count to the platform
    assert learned(manifests["ecology-bureau"], greedy.run_id) is None


def test_a_party_the_coordinator_invents_is_refused_at_every_node(city) -> None:  # type: ignore[no-untyped-def]
    experiment, clients, _ = city
    real = experiment.new_terms()
    parties = (*real.parties, "ghost-bureau")
    terms = Terms(real.run_id, parties, real.receiver, real.rule, Disclosure((real.receiver,), ()), purpose=PURPOSE)
    context = RunContext(terms.run_id, PURPOSE)
    adverts = {name: client.psi_join(context, terms) for name, client in clients.items()}
    ghost = Identity.in_directory(experiment.pki_dir, "ghost-bureau")  # issued by the federation's CA, pinned by no node
    signer = Credentials.from_pem(ghost.cert.read_bytes(), ghost.key.read_bytes())
    adverts["ghost-bureau"] = Party(terms, [], min_intersection=1, signer=signer).advert
    for client in clients.values():
        with pytest.raises(RoundAborted, match="'ghost-bureau': it is not among the parties this node accepts"):
            client.psi_admit(context, adverts)
    with pytest.raises(ProtocolOrderError, match="no PSI run"):
        clients["water-bureau"].psi_admit(context, {n: a for n, a in adverts.items() if n != "ghost-bureau"})  # run over


def test_malformed_psi_messages_are_refused_and_the_node_keeps_serving(city) -> None:  # type: ignore[no-untyped-def]
    experiment, clients, _ = city
    terms = experiment.new_terms()
    context = RunContext(terms.run_id, PURPOSE)
    adverts = {name: client.psi_join(context, terms) for name, client in clients.items()}
    for client in clients.values():
        client.psi_admit(context, adverts)
    with pytest.raises(InvalidRequest, match="does not authenticate"):
        clients["water-bureau"].psi_respond(context, terms.receiver, b"\x00" * 100)  # not sealed by the receiver
    with pytest.raises(FederationError, match="larger than max"):
        clients["commerce-bureau"].psi_respond(context, terms.receiver, b"\x00" * (5 << 20))  # refused by gRPC's bound
    with pytest.raises(InvalidRequest, match="not a sender"):
        clients["ecology-bureau"].psi_combine(context, "nobody", b"\x00" * 40)
    outcome = run_psi(clients, experiment.new_terms(), purpose=PURPOSE)  # every node still answers
    assert set(outcome.told.values()) == {"membership"}


def test_data_check_counts_every_key_left_out_on_the_node(city) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from federation.cli import app

    _, _, manifests = city
    done = CliRunner().invoke(app, ["data", "check", str(manifests["power-utility"])], env={"COLUMNS": "400"})
    assert done.exit_code == 0, done.output
    line = next(line for line in done.output.splitlines() if line.startswith("firm keys"))
    assert "invalid (not in the crosswalk)" in line and "invalid (wrong check character)" in line
