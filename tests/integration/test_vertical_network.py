"""Vertical training over real gRPC on localhost: the mass-balance city's five nodes, after their PSI run.

The nodes run their real manifests, policies, pinned certificates, audit
logs and state directories (copied into a temporary city). The test plays
the city platform: honest first (the model must be the one plaintext
training on the joined table gives), then replaying a run, choosing rows
of its own, naming another label party and leaving a party out.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fedkit import load_script, serving_in_process
from typer.testing import CliRunner

from federation.cli import app
from federation.coordinator.client import NodeClient
from federation.coordinator.psi import run_psi
from federation.coordinator.vertical import run_vertical
from federation.errors import PolicyDenied
from federation.experiments.launcher import prepare_identities
from federation.experiments.psi_config import load_psi_experiment
from federation.experiments.vertical_compare import compare_vertical
from federation.experiments.vertical_config import load_vertical_experiment
from federation.node.audit_chain import read_entries
from federation.node.manifest import load_manifest
from federation.node.psi_handlers import shared_keys
from federation.node.runtime import NodeRuntime
from federation.node.vertical_handlers import output_path
from federation.report.vertical import render_vertical
from federation.task import RunContext
from federation.transport.tls import Identity
from federation.vertical.align import TEST
from federation.vertical.logistic import Party, budgets, train
from federation.vertical.rows import inspection_measures, party_inputs
from federation.vertical.session import Terms

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mass_balance"
COLUMNS = {
    "ecology-bureau": ("outflow", "cod", "emissions", "past_violations"),
    "water-bureau": ("intake",),
    "commerce-bureau": ("materials",),
    "statistics-bureau": ("output",),
    "power-utility": ("electricity",),
}
City = tuple[dict[str, NodeClient], dict[str, Path], str]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    root = tmp_path_factory.mktemp("vertical_city")
    example = root / "examples" / "mass_balance"
    for folder in ("nodes", "policies", "schemas"):
        shutil.copytree(EXAMPLE / folder, example / folder)
    shutil.copy(EXAMPLE / "psi.toml", example / "psi.toml")
    load_script(EXAMPLE / "generate.py", "mass_balance_generate_vertical").generate(example / "data", firms=700, seed=5)
    experiment = load_psi_experiment(example / "psi.toml")
    manifests = {n: m for n, _, m in experiment.nodes if m is not None}
    prepare_identities(experiment.pki_dir, manifests, experiment.coordinator)
    with serving_in_process(manifests, experiment.pki_dir, experiment.coordinator) as clients:
        psi = experiment.new_terms()
        run_psi(clients, psi, purpose="mass-balance")
        yield clients, manifests, psi.run_id


def terms(psi_run: str, **changes: object) -> Terms:
    base = Terms(
        f"vertical-{secrets.token_hex(4)}", psi_run, "mass-balance", "ecology-bureau", "water-bureau", "statistics-bureau",
        COLUMNS, "violation", "split-1", max_steps=120,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def plaintext(manifests: dict[str, Path], run: Terms) -> dict[str, float]:
    """The same model trained in float on the joined table (what the central pool would fit), measured the same way."""
    shared = shared_keys(load_manifest(manifests["ecology-bureau"]).state_dir, run.psi_run)
    assert shared is not None
    parties, inputs = [], {}
    widths = run.widths()
    for name in run.parties:
        runtime = NodeRuntime.load(manifests[name])
        assert runtime.firm_keys is not None
        frame = pd.concat([runtime.train, runtime.test], ignore_index=True)
        target = run.target if name == run.label else None
        inputs[name] = party_inputs(
            frame, runtime.firm_keys.by_row, shared, columns=run.columns[name], target=target, split_seed=run.split_seed,
            test_fraction=run.test_fraction, validation_fraction=run.validation_fraction, where=name,
        )  # fmt: skip
        parties.append(Party(name, inputs[name].features, budgets(widths)[name]))
    labels = inputs[run.label].labels
    assert labels is not None
    split = inputs[run.label].roles
    train(parties, np.nan_to_num(labels), np.where(np.isfinite(labels), split, TEST + 1), None,
          max_steps=run.max_steps, learning_rate=run.learning_rate, l2=run.l2)  # fmt: skip
    return inspection_measures(sum(p.features @ p.weights for p in parties), labels, split)


def test_the_model_trained_on_shares_is_the_joined_tables_and_only_the_label_party_learns_the_scores(city: City) -> None:
    clients, manifests, psi_run = city
    run = terms(psi_run)
    outcome = run_vertical(clients, run)
    told = outcome.outcomes["ecology-bureau"]["test"]
    assert isinstance(told, dict)
    reference = plaintext(manifests, run)
    assert abs(told["auc"] - reference["auc"]) < 0.002 and told["k"] == reference["k"]
    for name in run.parties:
        if name != "ecology-bureau":
            assert set(outcome.outcomes[name]) == {"party", "steps", "best_step"}  # no measure, score or loss
    ranking = json.loads(output_path(load_manifest(manifests["ecology-bureau"]).state_dir, run.run_id).read_text())["ranking"]
    assert sorted(ranking) == shared_keys(load_manifest(manifests["ecology-bureau"]).state_dir, psi_run)
    assert not output_path(load_manifest(manifests["water-bureau"]).state_dir, run.run_id).exists()
    for name, manifest in manifests.items():
        entries = [e for e in read_entries(load_manifest(manifest).state_dir) if e["run_id"] == run.run_id]
        assert [e["rpc"] for e in entries] == ["VerticalJoin", "VerticalAdmit", "VerticalExchange"], name
        assert any("training ended" in r for r in entries[-1]["reasons"])
    assert outcome.bytes_by_node["power-utility"] < outcome.bytes_by_node["water-bureau"] / 20  # an input party sends little


def test_a_coordinator_that_replays_chooses_the_rows_or_changes_the_roles_is_refused_before_any_row_is_read(city: City) -> None:
    clients, _, psi_run = city
    run = terms(psi_run, max_steps=2)
    run_vertical(clients, run)
    with pytest.raises(PolicyDenied, match="accepted once"):
        run_vertical(clients, run)
    with pytest.raises(PolicyDenied, match="learned no shared firms in PSI run 'chosen-rows'"):
        run_vertical(clients, terms("chosen-rows"))
    with pytest.raises(PolicyDenied, match="label_party is 'ecology-bureau', the run names 'water-bureau'"):
        run_vertical(clients, terms(psi_run, label="water-bureau", compute="ecology-bureau"))
    without = {k: v for k, v in COLUMNS.items() if k != "power-utility"}
    with pytest.raises(PolicyDenied, match=r"require_parties needs \['power-utility'\]"):
        run_vertical(clients, terms(psi_run, columns=without))
    with pytest.raises(PolicyDenied, match=r"columns \['turnover'\] are not allowed"):
        run_vertical(clients, terms(psi_run, columns={**COLUMNS, "commerce-bureau": ("materials", "turnover")}))


def small_experiment(example: Path, *, seeds: int, max_steps: int) -> Path:
    """The shipped vertical experiment file with fewer seeds and steps, beside the temporary city's nodes."""
    text = (EXAMPLE / "experiment.toml").read_text()
    text = text.replace("seeds = 5 ", f"seeds = {seeds} ").replace("max_steps = 600", f"max_steps = {max_steps}")
    path = example / "experiment-small.toml"
    path.write_text(text)
    return path


def test_compare_puts_vertical_central_pool_and_the_label_party_alone_on_the_same_firms_and_splits(
    city: City, tmp_path: Path
) -> None:
    clients, manifests, _ = city
    example = manifests["ecology-bureau"].parent.parent
    experiment = load_vertical_experiment(small_experiment(example, seeds=2, max_steps=120))
    comparison = compare_vertical(experiment, clients, tmp_path / "run")
    results = comparison.to_json()
    kinds = {a["kind"]: a for a in results["arrangements"]}
    assert set(kinds) == {"vertical", "central-pool", "local-only"} and not any(a["refused"] for a in kinds.values())
    for seed in range(2):
        vertical, pool, alone = (kinds[k]["runs"][seed]["measures"] for k in ("vertical", "central-pool", "local-only"))
        assert abs(vertical["auc"] - pool["auc"]) < 0.002  # the same rows, split and model, on shares or pooled
        assert vertical["k"] == pool["k"] == alone["k"] and vertical["test_firms"] == alone["test_firms"]
    assert results["psi"]["coordinator_count"] is None  # no policy's count_to lets this run tell the platform
    assert kinds["central-pool"]["runs"][0]["shared_firms"] == len(
        shared_keys(load_manifest(manifests["water-bureau"]).state_dir, results["psi"]["run_id"]) or []
    )
    # raw rows leave only for the central pool; the label party's run alone sends nothing to anybody
    assert all(n > 0 for n in kinds["central-pool"]["runs"][0]["raw_rows_by_node"].values())
    for kind in ("vertical", "local-only"):
        assert all(sum(r["raw_rows_by_node"].values()) == 0 for r in kinds[kind]["runs"])
    assert set(kinds["local-only"]["runs"][0]["bytes_by_node"]) == {"ecology-bureau"}
    assert set(results["lift"]) == set(COLUMNS) - {"ecology-bureau"} and all(len(r) == 2 for r in results["lift"].values())
    report = render_vertical(results, comparison.run_dir).read_text()
    assert "Lift of each department" in report and "## What each party learned" in report
    handed = [e for e in read_entries(load_manifest(manifests["power-utility"]).state_dir) if e["rpc"] == "ExportKeyed"]
    assert (
        handed[-1]["decision"] == "allow"
        and handed[-1]["rows"] == kinds["central-pool"]["runs"][0]["raw_rows_by_node"]["power-utility"]
    )
    ranking = CliRunner().invoke(app, ["score", str(manifests["ecology-bureau"]), "--top", "3"])
    assert ranking.exit_code == 0, ranking.output
    last = output_path(load_manifest(manifests["ecology-bureau"]).state_dir, f"{experiment.name}-run-vertical-1")
    top = json.loads(last.read_text())["ranking"][:3]  # the newest joint ranking: the last seed's vertical run
    assert [ranking.output.index(key) for key in top] == sorted(ranking.output.index(key) for key in top)
    assert "of 3" not in ranking.output and f"riskiest of {len(json.loads(last.read_text())['ranking'])}" in ranking.output


def test_the_central_pool_goes_through_each_policys_raw_gate(city: City) -> None:
    clients, manifests, _ = city
    context = RunContext("export-gate", "mass-balance")
    with pytest.raises(PolicyDenied, match=r"does not allow column\(s\) \['turnover'\]"):
        clients["commerce-bureau"].export_keyed(context, ["materials", "turnover"])
    with pytest.raises(PolicyDenied, match="does not cover purpose 'marketing'"):
        clients["commerce-bureau"].export_keyed(RunContext("export-gate", "marketing"), ["materials"])
    pki = load_psi_experiment(manifests["ecology-bureau"].parent.parent / "psi.toml").pki_dir
    peer = NodeClient(
        "commerce-bureau", clients["commerce-bureau"].address, Identity.in_directory(pki, "water-bureau"), timeout=30
    )
    try:
        with pytest.raises(PolicyDenied, match="'water-bureau' is not a recipient"):
            peer.export_keyed(context, ["materials"])  # a fellow party with a valid certificate gets nothing either
    finally:
        peer.close()
    refused = [e for e in read_entries(load_manifest(manifests["commerce-bureau"]).state_dir) if e["rpc"] == "ExportKeyed"]
    assert [e["decision"] for e in refused[-3:]] == ["deny", "deny", "deny"] and all(e["rows"] == 0 for e in refused[-3:])
