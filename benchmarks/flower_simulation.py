"""A thousand parties on Flower's Simulation Engine: seconds per federated round and memory per virtual node.

On the SYNTHETIC federation of `examples/many_parties` (7 to about 1,000
records per party) it runs `federation compare --engine flower-simulation`
with the federated topology only, twice in one run:

  small    a few parties (the engine's own cost: Ray, its workers, the driver);
  large    `--parties` parties (1,000 by default).

It prints the seconds of every federated round (round 1 includes the
proposal to every node), the peak resident memory of the driver, Ray and its
workers, and the memory each extra virtual node adds: (large - small) over
the extra parties, measured in the same run.

    python benchmarks/flower_simulation.py [--parties 1000] [--rounds 3] [--workers N] [--json PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from federation.experiments.config import load_experiment
from federation.flower.simulation import compare_simulated
from federation.models.evaluation import EvalSums
from federation.transport.tls import ensure_identities

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "many_parties"))
from generate import generate  # noqa: E402


def descendants_rss() -> int:
    """VmRSS of this process and every process descended from it (Ray's included), in bytes."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text().splitlines()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        parents[int(entry.name)] = int(fields.get("PPid", "0").strip())
        rss[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    mine = {os.getpid()}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                grew = True
    return sum(rss.get(pid, 0) for pid in mine)


class PeakMemory:
    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, descendants_rss())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(parties: int, rounds: int, workers: int | None) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        city = Path(folder)
        generate(city, parties=parties)
        path = city / "experiment.toml"
        text = path.read_text().replace("rounds = 10", f"rounds = {rounds}")
        path.write_text(text.replace('topologies = ["federated", "central-pool", "local-only"]', 'topologies = ["federated"]'))
        experiment = load_experiment(path)
        ensure_identities(experiment.pki_dir, [n for n, _, _ in experiment.nodes] + [experiment.coordinator])
        marks: list[float] = []

        def progress(label: str, total: int) -> Callable[[int, dict[str, EvalSums]], None]:
            marks.append(time.monotonic())
            return lambda round_, sums: marks.append(time.monotonic())

        began = time.monotonic()
        with PeakMemory() as memory:
            comparison = compare_simulated(experiment, topologies_to_run=["federated"], progress=progress, workers=workers)
        result = comparison.results[0]
        return {
            "parties": parties,
            "participants": len(result.participants),
            "round_seconds": [round(b - a, 2) for a, b in itertools.pairwise(marks)],
            "wall_seconds": round(time.monotonic() - began, 1),
            "peak_resident_mib": round(memory.peak / 2**20),
            "auc": round(result.overall("auc"), 4),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", type=int, default=1000)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    small = run(args.small, args.rounds, args.workers)
    large = run(args.parties, args.rounds, args.workers)
    extra = (int(large["peak_resident_mib"]) - int(small["peak_resident_mib"])) / max(args.parties - args.small, 1)  # type: ignore[call-overload]
    summary = {"small": small, "large": large, "mib_per_extra_virtual_node": round(extra, 2)}
    for name in ("small", "large"):
        s = summary[name]
        print(
            f"{name:<6} {s['parties']:>5} parties ({s['participants']} took part): rounds {s['round_seconds']} s, "  # type: ignore[index]
            f"whole run {s['wall_seconds']} s, peak {s['peak_resident_mib']} MiB, AUC {s['auc']}"  # type: ignore[index]
        )
    print(f"each extra virtual node: {extra:.2f} MiB (large - small, same run)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
