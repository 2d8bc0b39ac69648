"""Many parties on one machine: one node per process against many nodes per host process, in one run.

On the SYNTHETIC federation of `examples/many_parties` (131 local authorities
of 7 to about 1,000 records by default) it measures:

  alone    one node in its own process (`federation node serve`): resident
           memory and seconds until it serves;
  hosted   every node, N per host process (`federation node host`, N spread
           over the cores): resident memory of all hosts, seconds until every
           node serves, and the memory each extra node adds to a host;
  compare  `federation compare` over the hosted nodes with all three
           topologies (federated, central pool, local-only): wall time, and
           the hosts' resident memory after it.

It prints the ratio of the hosted memory to what one process per node would
take (the alone figure times the number of nodes), measured in the same run.

    python benchmarks/many_parties.py [--parties 131] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from federation.experiments.compare import compare
from federation.experiments.config import load_experiment
from federation.experiments.launcher import NodeProcess, prepare_identities, start_nodes, stop_nodes

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "many_parties"))
from generate import generate  # noqa: E402


def resident(nodes: list[NodeProcess]) -> int:
    """VmRSS of every distinct process, summed, in bytes."""
    total = 0
    for pid in {n.process.pid for n in nodes}:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", type=int, default=131)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        city = Path(folder)
        sizes = generate(city, parties=args.parties)
        experiment = load_experiment(city / "experiment.toml")
        manifests = {n: m for n, _, m in experiment.nodes if m is not None}
        prepare_identities(experiment.pki_dir, manifests, experiment.coordinator)
        first = next(iter(manifests))
        started = time.perf_counter()
        alone = start_nodes({first: manifests[first]}, city / "alone")
        alone_seconds, alone_bytes = time.perf_counter() - started, resident(alone)
        stop_nodes(alone)
        per_process = math.ceil(len(manifests) / (os.cpu_count() or 1))
        started = time.perf_counter()
        hosted = start_nodes(manifests, city / "hosted", per_process=per_process)
        try:
            hosted_seconds, hosted_bytes = time.perf_counter() - started, resident(hosted)
            started = time.perf_counter()
            result = compare(experiment, {n.node_id: n.address for n in hosted}, output_dir=city / "runs")
            compare_seconds, after_bytes = time.perf_counter() - started, resident(hosted)
        finally:
            stop_nodes(hosted)
    hosts = len({n.process.pid for n in hosted})
    extra = (hosted_bytes / hosts - alone_bytes) / max(per_process - 1, 1)
    mib = 2**20
    print(f"{len(manifests)} parties of {min(sizes.values())} to {max(sizes.values())} records")
    print(f"  alone:   one node per process: {alone_bytes / mib:,.0f} MiB resident, serving after {alone_seconds:.1f} s")
    print(f"  hosted:  {per_process} nodes per process, {hosts} processes: {hosted_bytes / mib:,.0f} MiB in all, "
          f"every node serving after {hosted_seconds:.1f} s; each extra node adds {extra / mib:.1f} MiB")  # fmt: skip
    print(f"  compare: federated, central pool and local-only in {compare_seconds:.0f} s; "
          f"{after_bytes / mib:,.0f} MiB resident in the hosts after it")  # fmt: skip
    for t in result.results:
        print(f"    {t.name:<22} {t.overall('auc'):.3f} AUC over {len(t.participants)} nodes")
    print(f"  hosted / one process per node (memory at start): {hosted_bytes / (alone_bytes * len(manifests)):.3f}")
    if args.json:
        figures = {
            "parties": len(manifests), "alone_mib": alone_bytes / mib, "alone_seconds": alone_seconds,
            "per_process": per_process, "hosted_mib": hosted_bytes / mib, "hosted_seconds": hosted_seconds,
            "extra_node_mib": extra / mib, "compare_seconds": compare_seconds, "after_compare_mib": after_bytes / mib,
        }  # fmt: skip
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
