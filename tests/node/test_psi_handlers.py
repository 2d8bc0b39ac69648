"""federation.node.psi_handlers and keys: a PSI run through the nodes' handlers, on real files, without a network.

Each node has its own data file, policy, audit log and state directory; the
coordinator is played by this test, relaying (and sometimes abusing) the
messages between handlers.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from psi_keys import firm_codes

from federation.errors import CohortRejected, ConfigError, InvalidRequest, PolicyDenied, ProtocolOrderError
from federation.node.audit import AuditLog, read_entries
from federation.node.keys import UNMAPPED, Crosswalk, KeySource, prepare_rows
from federation.node.psi_handlers import PsiHandlers
from federation.policy.model import load_policy
from federation.psi.plan import Disclosure
from federation.psi.session import Terms
from federation.psi.uscc import RULE
from federation.task import RunContext
from federation.trust.authority import throwaway_cohort

PARTIES = ("commerce", "ecology", "water")
COORDINATOR = "city-platform"
CREDENTIALS, TRUST = throwaway_cohort(PARTIES)
TODAY = dt.date(2026, 12, 2)


def valid_codes(n: int, seed: int = 0) -> list[str]:
    return firm_codes(n, random.Random(seed))


def write_policy(
    path: Path, party: str, *, membership: str = '["*"]', count: str = '["*"]', minimum: int = 1, required: str = "[]"
) -> Path:
    path.write_text(
        f"""
party = "{party}"
[[rule]]
name = "mass balance"
recipients = ["{COORDINATOR}"]
purposes = ["mass-balance"]
release = "stats"
psi = {{ membership_to = {membership}, count_to = {count}, min_intersection = {minimum}, require_parties = {required} }}
""",
        encoding="utf-8",
    )
    return path


def node(tmp_path: Path, party: str, keys: list[str], *, folder_name: str = "", **policy: object) -> PsiHandlers:
    folder = tmp_path / (folder_name or party)
    folder.mkdir()
    policy_path = write_policy(folder / "policy.toml", party, **policy)  # type: ignore[arg-type]
    table = pd.DataFrame({"code": keys})
    prepared = prepare_rows(table, KeySource("code", RULE), where=str(folder))
    return PsiHandlers(
        party,
        keys=lambda: prepared,
        policy=lambda: load_policy(policy_path, party=party),
        today=lambda: TODAY,
        audit=AuditLog(folder / "state"),
        state_dir=folder / "state",
        signer=CREDENTIALS[party],
        peers=TRUST,
    )


def relay(nodes: dict[str, PsiHandlers], terms: Terms) -> int | None:
    """What an honest coordinator does; returns the count it is told (None: not granted)."""
    context = RunContext(terms.run_id, "mass-balance")
    adverts = {name: n.join(COORDINATOR, context, terms) for name, n in nodes.items()}
    queries: dict[str, bytes] = {}
    for n in nodes.values():
        queries.update(n.admit(COORDINATOR, context, adverts))
    for sender, query in queries.items():
        nodes[terms.receiver].combine(COORDINATOR, context, sender, nodes[sender].respond(COORDINATOR, context, query))
    deliveries, count = nodes[terms.receiver].finish(COORDINATOR, context)
    for party, sealed in deliveries.items():
        nodes[party].deliver(COORDINATOR, context, sealed)
    return count


def terms(
    run_id: str = "psi-1", membership: tuple[str, ...] = ("ecology", "water"), count: tuple[str, ...] = ("commerce",)
) -> Terms:
    return Terms(run_id, PARTIES, "ecology", RULE, Disclosure(membership, count), purpose="mass-balance")


def audit(handlers: PsiHandlers) -> list[dict[str, object]]:
    return [e for e in read_entries(handlers.audit.directory) if str(e["rpc"]).startswith("Psi")]


def test_a_run_through_the_handlers_finds_the_intersection_and_audits_every_disclosure(tmp_path: Path) -> None:
    pool = valid_codes(300)
    sets = {"ecology": pool[:250], "water": pool[50:], "commerce": pool[30:200]}
    written = {
        "ecology": sets["ecology"],
        "water": [c.lower() for c in sets["water"]],
        "commerce": [c[:4] + "-" + c[4:] for c in sets["commerce"]],
    }
    nodes = {p: node(tmp_path, p, written[p]) for p in PARTIES}
    assert relay(nodes, terms()) is None  # no clause names the coordinator
    truth = sorted(set(pool[:250]) & set(pool[50:]) & set(pool[30:200]))
    assert nodes["ecology"].shared_keys("psi-1") == truth == nodes["water"].shared_keys("psi-1")
    assert nodes["commerce"].shared_keys("psi-1") is None  # it learns the count only
    commerce_log = audit(nodes["commerce"])
    assert [e["rpc"] for e in commerce_log] == ["PsiJoin", "PsiAdmit", "PsiRespond", "PsiDeliver"]
    assert [e["rpc"] for e in audit(nodes["ecology"])] == ["PsiJoin", "PsiAdmit", "PsiCombine", "PsiCombine", "PsiFinish"]
    assert any("170 distinct keys" in r for r in commerce_log[0]["reasons"])  # type: ignore[union-attr]
    assert commerce_log[-1]["reasons"] == [f"learned how many firms are shared: {len(truth)}"]
    assert audit(nodes["ecology"])[-1]["reasons"] == [f"learned which of its firms are shared: {len(truth)}"]


def test_a_node_whose_policy_refuses_a_disclosure_hashes_nothing_and_says_which_clause(tmp_path: Path) -> None:
    pool = valid_codes(60)
    nodes = {p: node(tmp_path, p, pool) for p in ("ecology", "water")}
    nodes["commerce"] = node(tmp_path, "commerce", pool, membership='["ecology"]', count="[]")
    context = RunContext("psi-1", "mass-balance")
    with pytest.raises(PolicyDenied) as refused:
        nodes["commerce"].join(COORDINATOR, context, terms())
    assert "does not let water learn which firms are shared (psi.membership_to)" in str(refused.value)
    assert audit(nodes["commerce"])[-1]["decision"] == "deny"
    assert not (tmp_path / "commerce" / "state" / "psi-runs.jsonl").exists()  # not even the run id was recorded
    with pytest.raises(PolicyDenied, match="not a recipient"):
        nodes["water"].join("someone-else", context, terms())
    with pytest.raises(PolicyDenied, match="does not cover purpose"):
        nodes["water"].join(COORDINATOR, RunContext("psi-1", "tax-audit"), replace(terms(), purpose="tax-audit"))


def test_a_coordinator_cannot_replay_a_run_or_skip_steps_or_speak_for_another_caller(tmp_path: Path) -> None:
    pool = valid_codes(80)
    nodes = {p: node(tmp_path, p, pool[: 40 + 10 * i]) for i, p in enumerate(PARTIES)}
    relay(nodes, terms())
    with pytest.raises(InvalidRequest, match="already run here"):
        nodes["water"].join(COORDINATOR, RunContext("psi-1", "mass-balance"), terms())
    context = RunContext("psi-2", "mass-balance")
    with pytest.raises(ProtocolOrderError, match="no PSI run"):
        nodes["water"].respond(COORDINATOR, context, b"x" * 64)
    nodes["water"].join(COORDINATOR, context, terms("psi-2"))
    with pytest.raises(PolicyDenied, match="another caller"):
        nodes["water"].admit("someone-else", context, {})
    with pytest.raises(InvalidRequest, match="another run"):
        nodes["commerce"].join(COORDINATOR, context, terms("psi-3"))


def test_a_failed_step_ends_the_run_at_that_node(tmp_path: Path) -> None:
    pool = valid_codes(50)
    nodes = {p: node(tmp_path, p, pool) for p in PARTIES}
    context = RunContext("psi-1", "mass-balance")
    adverts = {name: n.join(COORDINATOR, context, terms()) for name, n in nodes.items()}
    with pytest.raises(CohortRejected, match="not the run's parties"):
        nodes["water"].admit(COORDINATOR, context, {k: v for k, v in adverts.items() if k != "commerce"})
    with pytest.raises(ProtocolOrderError, match="no PSI run"):
        nodes["water"].admit(COORDINATOR, context, adverts)  # the run is over here: no second chance
    assert audit(nodes["water"])[-2]["decision"] == "error"


def test_keys_are_normalised_validated_and_mapped_through_a_crosswalk_with_every_problem_counted(tmp_path: Path) -> None:
    codes = valid_codes(6, seed=4)
    crosswalk = tmp_path / "crosswalk.csv"
    pd.DataFrame({"legacy": ["100", "101", "102", "103"], "uscc": [codes[0], codes[1], codes[2][:-1] + "0", codes[3]]}).to_csv(
        crosswalk, index=False
    )
    table = pd.DataFrame({"reg_no": ["100", " 101 ", "102", "999", "100", "103"]})
    keys = prepare_rows(table, KeySource("reg_no", RULE, Crosswalk(crosswalk, "legacy", "uscc")), where="power.toml")
    wrong = codes[2][:-1] + "0"
    assert keys.by_row[:2] == (codes[0], codes[1]) and keys.by_row[3] is None and keys.by_row[4] == codes[0]
    assert keys.report.invalid[UNMAPPED] == 1 and keys.report.duplicates == 1 and keys.report.total == 6
    assert (keys.by_row[2] is None) == (wrong != codes[2])
    assert keys.distinct == sorted({codes[0], codes[1], codes[3]} | ({wrong} if keys.by_row[2] else set()))
    with pytest.raises(ConfigError, match="no column 'code'"):
        prepare_rows(table, KeySource("reg_no", RULE, Crosswalk(crosswalk, "legacy", "code")), where="power.toml")
    with pytest.raises(ConfigError, match=r"keys\.column"):
        prepare_rows(table, KeySource("uscc", RULE), where="power.toml")


def test_a_coordinator_may_not_be_a_party_nor_ask_under_another_purpose_nor_run_a_subset(tmp_path: Path) -> None:
    pool = valid_codes(40)
    water = node(tmp_path, "water", pool)
    context = RunContext("psi-9", "mass-balance")
    itself = Terms("psi-9", (*PARTIES, COORDINATOR), COORDINATOR, RULE, Disclosure((COORDINATOR,), ()), purpose="mass-balance")
    with pytest.raises(PolicyDenied, match="names itself a party"):
        water.join(COORDINATOR, context, itself)  # it would be the receiver, probing membership with keys it chose
    with pytest.raises(InvalidRequest, match="another run or purpose"):
        water.join(COORDINATOR, context, replace(terms("psi-9"), purpose="marketing"))
    guarded = node(tmp_path, "water", pool, folder_name="strict", required='["commerce", "ecology", "water"]')
    pair = Terms("psi-10", ("ecology", "water"), "ecology", RULE, Disclosure(("ecology",), ()), purpose="mass-balance")
    with pytest.raises(PolicyDenied, match=r"only with \['commerce'\] among the parties \(psi.require_parties\)"):
        guarded.join(COORDINATOR, RunContext("psi-10", "mass-balance"), pair)  # a pairwise sub-run
    guarded.join(COORDINATOR, RunContext("psi-11", "mass-balance"), terms("psi-11"))  # the full run is fine
