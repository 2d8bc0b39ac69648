"""Two-party PSI at scale between two real node processes over mutual TLS, against openmined-psi on the same sets.

It generates the SYNTHETIC two-register city of `examples/psi_pair` (N keys
per party, `overlap` of them shared), starts the two parties as real
`federation node serve` processes, and runs one PSI through the
coordinator (`psi.pair`: X25519 Diffie-Hellman in sealed chunks). It
prints the wall time of the run, the bytes the nodes sent and the bytes
that crossed a socket (each node's bytes are relayed once more by the
coordinator) per key of both sets, each node's peak resident memory, and
checks the result against the plaintext join: the receiver's kept keys
and the coordinator's count.

In the same run it times openmined-psi (its exact Raw mode, P-256) on the
same two sets, in one process and without a network, and prints ours /
theirs both against its sequential time and against its critical path with
the two parties working in parallel (setup and request at once). openmined-psi
pins protobuf 6.30, which this project cannot use, so it runs in a venv of
its own under `.bench/` (created on first use from the package registry;
`--no-openmined` skips it).

    python benchmarks/psi_pair.py [--keys 1000000] [--overlap 0.5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from federation.coordinator.client import NodeClient
from federation.coordinator.psi import run_psi
from federation.experiments.launcher import prepare_identities, start_nodes, stop_nodes
from federation.experiments.psi_config import load_psi_experiment
from federation.node.manifest import load_manifest
from federation.node.psi_handlers import shared_keys
from federation.transport.tls import Identity

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "psi_pair"))
from generate import RECEIVER, SENDER, generate  # noqa: E402

OPENMINED_VENV = ROOT / ".bench" / "openmined-venv"
OPENMINED = """
import json, sys, time
import private_set_intersection.python as psi
mine = open(sys.argv[1]).read().split()
theirs = open(sys.argv[2]).read().split()
server, client = psi.server.CreateWithNewKey(True), psi.client.CreateWithNewKey(True)
t0 = time.perf_counter(); setup = server.CreateSetupMessage(0.0, len(mine), theirs, psi.DataStructure.RAW)
t1 = time.perf_counter(); request = client.CreateRequest(mine)
t2 = time.perf_counter(); response = server.ProcessRequest(request)
t3 = time.perf_counter(); shared = client.GetIntersection(setup, response)
t4 = time.perf_counter()
sizes = [len(m.SerializeToString()) for m in (setup, request, response)]
print(json.dumps({"setup": t1 - t0, "request": t2 - t1, "process": t3 - t2, "intersect": t4 - t3,
                  "bytes": sum(sizes), "shared": len(shared)}))
"""


def openmined_python() -> Path:
    python = OPENMINED_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {OPENMINED_VENV.relative_to(ROOT)} with openmined-psi (it pins protobuf 6.30) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(OPENMINED_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "openmined-psi"], check=True)
    return python


def peak_memory(pid: int) -> int:
    """VmHWM of a live process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def keys_of(path: Path) -> list[str]:
    return [line.split(",")[0] for line in path.read_text().splitlines()[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--no-openmined", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures: dict[str, object] = {"keys_per_party": args.keys, "overlap": args.overlap}
    with tempfile.TemporaryDirectory() as folder:
        city = Path(folder)
        started = time.perf_counter()
        truth = generate(city, keys=args.keys, overlap=args.overlap)
        print(f"{args.keys:,} keys per party, {truth['shared']:,} shared; city written in {time.perf_counter() - started:.1f} s")
        experiment = load_psi_experiment(city / "psi.toml")
        manifests = {n: m for n, _, m in experiment.nodes if m is not None}
        prepare_identities(experiment.pki_dir, manifests, experiment.coordinator)
        started = time.perf_counter()
        nodes = start_nodes(manifests, city / "logs", pki_dir=experiment.pki_dir, timeout=900)
        print(f"two node processes serving in {time.perf_counter() - started:.1f} s (each loads and checks its register)")
        try:
            ready = {n.node_id: peak_memory(n.process.pid) for n in nodes}
            identity = Identity.in_directory(experiment.pki_dir, experiment.coordinator)
            clients = {n.node_id: NodeClient(n.node_id, n.address, identity, timeout=1800) for n in nodes}
            outcome = run_psi(clients, experiment.new_terms(), purpose=experiment.purpose)
            peaks = {n.node_id: peak_memory(n.process.pid) for n in nodes}
            for client in clients.values():
                client.close()
        finally:
            stop_nodes(nodes)
        kept = shared_keys(load_manifest(manifests[RECEIVER]).state_dir, outcome.terms.run_id) or []
        plain = set(keys_of(city / "data" / f"{RECEIVER}.csv")) & set(keys_of(city / "data" / f"{SENDER}.csv"))
        exact = set(kept) == plain and outcome.count == len(plain)
        sent = sum(outcome.bytes_by_node.values())
        total_keys = 2 * args.keys
        print(f"ours (psi.pair over gRPC + mTLS, two node processes): {outcome.seconds:.1f} s wall")
        print(f"  result: {len(kept):,} shared keys at the receiver, count {outcome.count} to the coordinator; exact: {exact}")
        per_key = sent / total_keys
        print(f"  bytes sent by the nodes: {per_key:.1f} per key; on a socket: {2 * per_key:.1f} (each relayed once more)")
        for node in nodes:
            peak, idle = peaks[node.node_id] / 2**20, ready[node.node_id] / 2**20
            print(f"  {node.node_id:<14} peak resident {peak:,.0f} MiB (serving, before the run: {idle:,.0f} MiB)")
        figures.update(
            seconds=outcome.seconds,
            exact=exact,
            bytes_sent_per_key=sent / total_keys,
            bytes_on_socket_per_key=2 * sent / total_keys,
            peak_memory_mib={n: v / 2**20 for n, v in peaks.items()},
        )
        if not args.no_openmined:
            python = openmined_python()
            receiver, sender = city / "receiver.txt", city / "sender.txt"
            receiver.write_text("\n".join(keys_of(city / "data" / f"{RECEIVER}.csv")))
            sender.write_text("\n".join(keys_of(city / "data" / f"{SENDER}.csv")))
            theirs = json.loads(subprocess.run([str(python), "-c", OPENMINED, str(receiver), str(sender)],
                                               check=True, capture_output=True, text=True).stdout)  # fmt: skip
            sequential = theirs["setup"] + theirs["request"] + theirs["process"] + theirs["intersect"]
            parallel = max(theirs["setup"], theirs["request"]) + theirs["process"] + theirs["intersect"]
            print(f"openmined-psi (Raw, P-256, one process, no network): {sequential:.1f} s sequential, "
                  f"{parallel:.1f} s with setup and request in parallel; {theirs['bytes'] / total_keys:.1f} bytes per key; "
                  f"{theirs['shared']:,} shared (exact: {theirs['shared'] == len(plain)})")  # fmt: skip
            print(f"ours / theirs: {outcome.seconds / sequential:.2f} (sequential), {outcome.seconds / parallel:.2f} (parallel)")
            figures["openmined"] = {**theirs, "sequential": sequential, "parallel": parallel}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
