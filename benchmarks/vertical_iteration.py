"""What one full-batch iteration of vertical logistic regression costs over gRPC, against the same iteration unprotected.

On a SYNTHETIC three-party city built in a temporary directory (`--firms`
firms held by all three parties, `--features` numeric columns split evenly
between them, the label party also holding a binary label), with real
nodes in this process (manifests, schemas, policies, pinned certificates,
audit logs, mutual TLS on 127.0.0.1) that first find their shared firms
in one PSI run, it times, per full-batch iteration:

  grpc          `coordinator.vertical.run_vertical` over the live nodes:
                sealed letters through the coordinator, every party's part
                of `vertical.program` run by its node;
  in-process    the same programs with the mail passed by hand
                (`vertical.local.run`), no network, no sealing;
  float         `logistic.plain_step` and the weight update on the joined
                table, in this process: no protection at all;
  float + wire  float plus the gRPC calls an unprotected run with the same
                network pattern needs (the coordinator fetches each feature
                party's n partial scores, hands them to the label party,
                which answers n residuals, and hands those to each feature
                party), timed as echo calls of exactly those payloads over
                the same mutual-TLS server stack (`transport.server`), three
                sequential rounds of parallel calls: a lower bound of the
                network a plaintext protocol would pay.

A run of S steps also pays its setup (adverts, padded columns) and the
final joint scores, so the per-iteration figures are the difference of a
run of `--steps` LONG and SHORT steps divided by LONG - SHORT (only step 0
evaluates the validation loss; nothing stops early). It prints seconds per
iteration, the ratios grpc / float, grpc / (float + wire) and
grpc / in-process, and the rounds and bytes each node sends per iteration.
The ratios are measured in this run; nothing is asserted.

    python benchmarks/vertical_iteration.py [--firms 10000] [--features 30] [--steps 3,13] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import grpc
import numpy as np
import pandas as pd

from federation.coordinator.client import NodeClient
from federation.coordinator.psi import run_psi
from federation.coordinator.vertical import VerticalOutcome, run_vertical
from federation.experiments.launcher import prepare_identities
from federation.node.psi_handlers import shared_keys
from federation.node.runtime import NodeRuntime
from federation.node.serve import start_node
from federation.proto.v1 import node_pb2_grpc
from federation.psi.plan import Disclosure
from federation.psi.session import Terms as PsiTerms
from federation.psi.uscc import ALPHABET, RULE, check_character
from federation.transport.channel import secure_channel
from federation.transport.server import create_server
from federation.transport.tls import Identity
from federation.vertical import local
from federation.vertical.align import TRAIN
from federation.vertical.logistic import Party, plain_step
from federation.vertical.program import Local, Plan
from federation.vertical.rows import Inputs, party_inputs
from federation.vertical.session import Terms

PARTIES = ("label-party", "compute-party", "helper-party")  # label party, compute party 1, helper; each owns columns
LABEL, COMPUTE, HELPER = PARTIES
COORDINATOR = "city-platform"
PURPOSE = "benchmark"
TARGET = "label"
ECHO = "/federation.benchmark.Echo/Call"


# --- the synthetic city ---------------------------------------------------------------------------------------------


def codes(n: int, rng: np.random.Generator) -> list[str]:
    """n distinct valid unified social credit codes."""
    letters = np.array(list(ALPHABET))
    out: set[str] = set()
    while len(out) < n:
        bodies = ["".join(row) for row in letters[rng.integers(0, len(ALPHABET), size=(n - len(out), 17))]]
        out.update(body + check_character(body) for body in bodies)
    return sorted(out)


def columns_of(features: int) -> dict[str, list[str]]:
    """Feature columns x00, x01, ... split as evenly as possible over the three parties, in order."""
    names = [f"x{i:02d}" for i in range(features)]
    return {party: [str(c) for c in chunk] for party, chunk in zip(PARTIES, np.array_split(names, len(PARTIES)), strict=True)}


def write_city(root: Path, firms: int, columns: dict[str, list[str]], seed: int) -> dict[str, Path]:
    """Every party's data file (its own row order), schema, policy and manifest; returns the manifests."""
    rng = np.random.default_rng(seed)
    keys = np.array(codes(firms, rng))
    total = sum(len(c) for c in columns.values())
    x = rng.normal(size=(firms, total))
    logit = x @ (rng.normal(size=total) * 2 / np.sqrt(total)) - 1.0
    labels = (rng.random(firms) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    expires = f"{time.gmtime().tm_year + 1}-12-31"
    manifests: dict[str, Path] = {}
    start = 0
    for folder in ("data", "schemas", "policies", "nodes"):
        (root / folder).mkdir(parents=True)
    for party, names in columns.items():
        order = rng.permutation(firms)
        frame = pd.DataFrame(x[order, start : start + len(names)], columns=names)
        start += len(names)
        frame.insert(0, "uscc", keys[order])
        if party == LABEL:
            frame[TARGET] = labels[order]
        frame.to_csv(root / "data" / f"{party}.csv", index=False, float_format="%.6f")
        owned = [*names, *([TARGET] if party == LABEL else [])]
        fields = [f'[[field]]\nname = "{c}"\ntype = "float"\ndescription = "Synthetic standard normal."\n' for c in names]
        if party == LABEL:
            fields.append(f'[[field]]\nname = "{TARGET}"\ntype = "bool"\ndescription = "Synthetic label."\n')
        target = f'target = "{TARGET}"\n' if party == LABEL else ""
        (root / "schemas" / f"{party}.toml").write_text(f'name = "bench-{party}"\n{target}\n' + "\n".join(fields))
        metrics = ', metrics_to = ["coordinator"]' if party == LABEL else ""
        (root / "policies" / f"{party}.toml").write_text(
            f'party = "{party}"\ndefault = "deny"\n\n'
            f'[[rule]]\nname = "benchmark: find the shared firms"\nrecipients = ["{COORDINATOR}"]\npurposes = ["{PURPOSE}"]\n'
            f'release = "stats"\nexpires = {expires}\n'
            f'psi = {{ require_parties = {json.dumps(list(PARTIES))}, membership_to = ["*"], min_intersection = 1 }}\n\n'
            f'[[rule]]\nname = "benchmark: train on shares"\nrecipients = ["{COORDINATOR}"]\npurposes = ["{PURPOSE}"]\n'
            f'release = "stats"\nexpires = {expires}\ncolumns = {{ allow = {json.dumps(owned)} }}\n'
            f'vertical = {{ label_party = "{LABEL}", require_parties = {json.dumps(list(PARTIES))}{metrics} }}\n'
        )
        mapping = "\n".join(f'{c} = "{c}"' for c in owned)
        manifests[party] = root / "nodes" / f"{party}.toml"
        manifests[party].write_text(
            f'[node]\nid = "{party}"\nkind = "department"\ndescription = "Synthetic benchmark party"\n\n'
            f'[data]\npath = "../data/{party}.csv"\nschema = "../schemas/{party}.toml"\nmissing = [""]\n\n'
            f'[data.columns]\n{mapping}\n\n[keys]\ncolumn = "uscc"\nrule = "{RULE}"\n\n'
            f'[policy]\npath = "../policies/{party}.toml"\n\n[tls]\ndir = "../pki"\n\n'
            f'[peers]\naccept = "pinned"\npins = "../pki/peers.toml"\n\n[state]\ndir = "../state/{party}"\n'
        )
    return manifests


# --- timing -----------------------------------------------------------------------------------------------------


def per_iteration(run: Callable[[int], float], steps: tuple[int, int]) -> tuple[float, dict[int, float]]:
    """(seconds per iteration, seconds of each whole run): the difference of a long and a short run over their steps."""
    seconds = {s: run(s) for s in steps}
    short, long = steps
    return (seconds[long] - seconds[short]) / (long - short), seconds


def grpc_runs(
    clients: dict[str, NodeClient], base: Terms, steps: tuple[int, int]
) -> tuple[float, dict[int, float], dict[int, VerticalOutcome]]:
    outcomes: dict[int, VerticalOutcome] = {}

    def run(s: int) -> float:
        terms = replace(base, run_id=f"bench-vertical-{s}-{secrets.token_hex(4)}", max_steps=s)
        started = time.perf_counter()
        outcomes[s] = run_vertical(clients, terms)
        seconds = time.perf_counter() - started
        told = {name: int(str(o.get("steps"))) for name, o in outcomes[s].outcomes.items()}
        if set(told.values()) != {s}:
            raise RuntimeError(f"a run of {s} steps ended after {told}: the timing would be wrong")
        return seconds

    each, seconds = per_iteration(run, steps)
    return each, seconds, outcomes


def in_process_runs(plan: Plan, inputs: dict[str, Inputs], steps: tuple[int, int]) -> tuple[float, dict[int, float]]:
    pair = {frozenset((a, b)): secrets.token_bytes(32) for a in PARTIES for b in PARTIES if a < b}
    locals_ = {
        a: Local(
            inputs[a].features, inputs[a].roles, {b: pair[frozenset((a, b))] for b in PARTIES if b != a}, secrets.token_bytes(32),
            inputs[a].labels,
        )
        for a in PARTIES
    }  # fmt: skip

    def run(s: int) -> float:
        started = time.perf_counter()
        outcomes = local.run(replace(plan, max_steps=s), locals_)
        seconds = time.perf_counter() - started
        if {o.steps for o in outcomes.values()} != {s}:
            raise RuntimeError(f"an in-process run of {s} steps stopped early")
        return seconds

    return per_iteration(run, steps)


def float_iteration(plan: Plan, inputs: dict[str, Inputs], repeats: int) -> float:
    """Median seconds of one float step (scores, series sigmoid, every party's X_j^T r) and the weight update."""
    parties = [Party(name, inputs[name].features, plan.budgets[name]) for name in plan.owners]
    labels = inputs[plan.label].labels
    assert labels is not None
    known = np.isfinite(labels)
    train = (inputs[plan.label].roles == TRAIN) & known
    y = np.nan_to_num(labels)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        grads, _ = plain_step(parties, y, train)
        for party in parties:
            party.weights -= plan.learning_rate * (grads[party.name] + plan.l2 * party.weights)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def echo_servers(pki: Path) -> tuple[list[grpc.Server], dict[str, str]]:
    """One echo server per party on the nodes' own server stack (mutual TLS, the interceptor), under its certificate.

    A request is 8 bytes giving the reply's size, then any payload; the reply is that many bytes.
    """

    def call(request: bytes, context: grpc.ServicerContext) -> bytes:
        return bytes(int.from_bytes(request[:8], "big"))

    handler = grpc.method_handlers_generic_handler(
        ECHO.split("/")[1], {"Call": grpc.unary_unary_rpc_method_handler(call)}
    )  # no (de)serializers: bytes in, bytes out
    servers, addresses = [], {}
    for party in PARTIES:
        server, port = create_server(node_pb2_grpc.NodeServiceServicer(), Identity.in_directory(pki, party), "127.0.0.1:0")
        server.add_generic_rpc_handlers((handler,))
        server.start()
        servers.append(server)
        addresses[party] = f"127.0.0.1:{port}"
    return servers, addresses


def wire_iteration(pki: Path, rows: int, repeats: int) -> float:
    """Median seconds of the three rounds of calls a plaintext run with the coordinator's pattern needs per step."""
    servers, addresses = echo_servers(pki)
    identity = Identity.in_directory(pki, COORDINATOR)
    channels = {p: secure_channel(addresses[p], identity, expected_node=p) for p in PARTIES}
    calls = {p: channels[p].unary_unary(ECHO) for p in PARTIES}
    vector = 8 * rows  # n float64
    payload = np.random.default_rng(0).bytes(len(PARTIES) * vector)  # incompressible, though gRPC compresses nothing here

    def echo(party: str, send: int, answer: int) -> int:
        reply = calls[party](answer.to_bytes(8, "big") + payload[:send], timeout=60)
        return len(reply)

    feature_parties = [p for p in PARTIES if p != LABEL]
    times = []
    try:
        with ThreadPoolExecutor(max_workers=len(PARTIES)) as pool:
            for _ in range(repeats + 1):  # the first warms the channels up
                started = time.perf_counter()
                list(pool.map(lambda p: echo(p, 0, vector), feature_parties))  # each feature party's partial scores
                echo(LABEL, len(feature_parties) * vector, vector)  # to the label party; it answers the residuals
                list(pool.map(lambda p: echo(p, vector, 0), feature_parties))  # the residuals to each feature party
                times.append(time.perf_counter() - started)
    finally:
        for channel in channels.values():
            channel.close()
        for server in servers:
            server.stop(0)
    return statistics.median(times[1:])


# --- main -------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--steps", default="3,13", help="SHORT,LONG: the two run lengths whose difference is timed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    short, long = (int(s) for s in args.steps.split(","))
    if not 1 <= short < long:
        parser.error("--steps needs 1 <= SHORT < LONG")
    steps = (short, long)
    columns = columns_of(args.features)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vertical-iteration-") as tmp:
        root = Path(tmp)
        manifests = write_city(root, args.firms, columns, args.seed)
        prepare_identities(root / "pki", manifests, COORDINATOR)
        identity = Identity.in_directory(root / "pki", COORDINATOR)
        servers: list[grpc.Server] = []
        clients: dict[str, NodeClient] = {}
        runtimes: dict[str, NodeRuntime] = {}
        try:
            for name, manifest in manifests.items():
                server, port, runtimes[name] = start_node(manifest, listen="127.0.0.1:0")
                servers.append(server)
                clients[name] = NodeClient(name, f"127.0.0.1:{port}", identity, timeout=600)
            built = time.perf_counter() - began
            psi = PsiTerms(f"bench-psi-{secrets.token_hex(4)}", PARTIES, LABEL, RULE, Disclosure(PARTIES, ()), purpose=PURPOSE)
            started = time.perf_counter()
            run_psi(clients, psi, purpose=PURPOSE)
            psi_seconds = time.perf_counter() - started
            shared = shared_keys(runtimes[LABEL].manifest.state_dir, psi.run_id)
            assert shared is not None
            base = Terms(
                "template", psi.run_id, PURPOSE, LABEL, COMPUTE, HELPER, {p: tuple(c) for p, c in columns.items()}, TARGET,
                "bench-split", max_steps=short, every=100_000, patience=100_000,
            )  # fmt: skip
            inputs = {}
            for name, runtime in runtimes.items():
                assert runtime.firm_keys is not None
                inputs[name] = party_inputs(
                    pd.concat([runtime.train, runtime.test], ignore_index=True), runtime.firm_keys.by_row, shared,
                    columns=base.columns[name], target=TARGET if name == LABEL else None, split_seed=base.split_seed,
                    test_fraction=base.test_fraction, validation_fraction=base.validation_fraction, where=name,
                )  # fmt: skip
            plan = base.plan()
            grpc_each, grpc_seconds, outcomes = grpc_runs(clients, base, steps)
        finally:
            for client in clients.values():
                client.close()
            for server in servers:
                server.stop(0)
        local_each, local_seconds = in_process_runs(plan, inputs, steps)
        float_each = float_iteration(plan, inputs, repeats=50)
        wire_each = wire_iteration(root / "pki", len(shared), repeats=20)
    total = time.perf_counter() - began
    span = long - short
    rounds = (outcomes[long].rounds - outcomes[short].rounds) / span
    sent = {p: (outcomes[long].bytes_by_node[p] - outcomes[short].bytes_by_node[p]) / span for p in PARTIES}
    plain_wire = float_each + wire_each
    widths = plan.widths
    print(
        f"{len(shared)} firms shared by 3 parties (PSI over gRPC {psi_seconds:.1f} s), {args.features} features "
        f"({', '.join(f'{p} {widths[p]}' for p in PARTIES)} columns, the label party's with the intercept); "
        f"per iteration from runs of {short} and {long} steps"
    )
    print(f"  {'grpc (run_vertical, live nodes)':<36} {grpc_each:9.4f} s   (whole runs: "
          f"{', '.join(f'{s} steps {grpc_seconds[s]:.2f} s' for s in steps)})")  # fmt: skip
    print(f"  {'in-process (local.run, no network)':<36} {local_each:9.4f} s   (whole runs: "
          f"{', '.join(f'{s} steps {local_seconds[s]:.2f} s' for s in steps)})")  # fmt: skip
    print(f"  {'float (plain_step, joined table)':<36} {float_each:9.4f} s")
    print(f"  {'float + wire (same call pattern)':<36} {plain_wire:9.4f} s   (wire {wire_each:.4f} s: 3 rounds of echo calls)")
    print(f"  grpc / float          {grpc_each / float_each:8.1f}x")
    print(f"  grpc / (float + wire) {grpc_each / plain_wire:8.1f}x")
    print(f"  grpc / in-process     {grpc_each / local_each:8.1f}x")
    print(f"  coordinator rounds per iteration: {rounds:.1f}")
    for p in PARTIES:
        print(f"  {p:<14} ({base.role(p):<13}) sends {sent[p] / 1e6:7.2f} MB per iteration")
    print(f"  (city built and nodes started in {built:.1f} s; whole benchmark {total:.1f} s)")
    if args.json:
        figures = {
            "firms": len(shared),
            "features": args.features,
            "widths": dict(widths),
            "steps": list(steps),
            "seconds_per_iteration": {
                "grpc": grpc_each,
                "in_process": local_each,
                "float": float_each,
                "float_plus_wire": plain_wire,
            },
            "wire_seconds_per_iteration": wire_each,
            "whole_runs_seconds": {"grpc": grpc_seconds, "in_process": local_seconds},
            "ratios": {
                "grpc_over_float": grpc_each / float_each,
                "grpc_over_float_plus_wire": grpc_each / plain_wire,
                "grpc_over_in_process": grpc_each / local_each,
            },
            "rounds_per_iteration": rounds,
            "bytes_sent_per_iteration": sent,
            "psi_seconds": psi_seconds,
            "total_seconds": total,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
