"""Secure aggregation: ours against plain summation, Flower's SecAgg+ and the raw keystream.

Everything runs in one process on this machine, sequentially: every node's
work and the coordinator's, without a network. For each grid point it
measures
  (a) plain summation of the same quantised vectors,
  (b) our protocol end to end (all five phases, all parties, with every advert and
      survivor-set signature made and checked; the certificates are issued beforehand),
  (c) Flower's SecAgg+ through its own SecAggPlusWorkflow and secaggplus_mod
      (see flower_secaggplus.py), with the same n, length, neighbours and dropouts,
  (d) the raw keystream speed of the PRG, and our mask expansion speed,
and checks that every completed aggregate is exact. Ratios are against
numbers measured in the same run, never against constants.

    python benchmarks/secagg.py [--quick] [--json PATH] [--robustness-rounds N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from federation.errors import RoundAborted
from federation.secagg import _crypto
from federation.secagg.client import SecAggClient
from federation.secagg.config import SecAggConfig, default_threshold, session_id
from federation.secagg.graph import default_degree
from federation.secagg.local import PHASE_NAMES, run_local_round
from federation.secagg.masking import MaskAccumulator
from federation.trust import Credentials, PeerTrust
from federation.trust.authority import throwaway_cohort

sys.path.insert(0, str(Path(__file__).resolve().parent))
TOLERATED = tuple(p for p in PHASE_NAMES if p != "confirm-survivors")  # phases where a dropout is survived

# Both protocols use the same SecAgg+ graph: about 2 log2 n neighbours per node
# (12 at n = 50, 14 at n = 100) and a threshold of a strict majority of a node's
# share holders (itself and its neighbours). Flower's example setting of 3 shares
# and threshold 2 loses a dropped node's key whenever a neighbour drops too, so
# at 10 % dropouts neither protocol completes most rounds with it.


@dataclass
class Point:
    n: int
    dim: int
    degree: int
    dropout: float
    plain_s: float
    ours_s: float
    flower_s: float | None
    mask_bytes_per_s: float
    keystream_bytes_per_s: float
    ours_exact: bool
    flower_exact: bool | None


def best_of(repeats: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def keystream_speed(dim: int, fill) -> float:  # type: ignore[no-untyped-def]
    out = np.empty(dim, dtype=np.uint32)
    seed = bytes(range(32))
    return out.nbytes / best_of(5, lambda: fill(seed, out))


def mask_speed(dim: int) -> float:
    vector = np.zeros(dim, dtype=np.uint32)
    accumulator = MaskAccumulator(vector)
    return vector.nbytes / best_of(5, lambda: accumulator.add(bytes(range(32))))


def config_for(n: int, dim: int) -> SecAggConfig:
    participants = tuple(f"node-{i}" for i in range(n))
    degree = default_degree(n)
    session = session_id("bench", 1, participants, payload="update")
    return SecAggConfig(session, participants, default_threshold(degree + 1), degree, 1.0, dim)


def fresh_clients(config: SecAggConfig, credentials: dict[str, Credentials], trust: PeerTrust) -> dict[int, SecAggClient]:
    """One round's clients (fresh X25519 keys) for parties whose certificates already exist."""
    return {i: SecAggClient(config, i, signer=credentials[name], peers=trust) for i, name in enumerate(config.participants)}


def measure_point(n: int, dim: int, dropout: float, *, with_flower: bool, rng: np.random.Generator) -> Point:
    config = config_for(n, dim)
    values = {i: rng.uniform(-1, 1, dim) for i in range(n)}
    encoded = {i: config.quantizer.encode(values[i], rng) for i in range(n)}
    dropped = set(rng.choice(n, size=round(dropout * n), replace=False).tolist())
    survivors = [i for i in range(n) if i not in dropped]

    def plain() -> np.ndarray:
        total = np.zeros(dim, dtype=np.uint32)
        for i in survivors:
            np.add(total, encoded[i], out=total)
        return total

    expected = plain()
    plain_s = best_of(3, plain)
    credentials, trust = throwaway_cohort(config.participants)  # issued once per federation, not per round
    start = time.perf_counter()
    total, _ = run_local_round(
        config, encoded, drop={"masked-update": dropped}, clients=fresh_clients(config, credentials, trust)
    )
    ours_s = time.perf_counter() - start
    flower_s, flower_exact = None, None
    if with_flower:
        from flower_secaggplus import STAGES, run_flower_secaggplus

        result = run_flower_secaggplus(
            n,
            dim,
            neighbours=config.degree or n - 1,
            threshold=config.threshold,
            drop={STAGES[2]: dropped} if dropped else None,
            seed=int(rng.integers(1 << 30)),
        )
        flower_s, flower_exact = result.seconds, bool(result.exact and result.completed)
    return Point(
        n,
        dim,
        config.degree or n - 1,
        dropout,
        plain_s,
        ours_s,
        flower_s,
        mask_speed(dim),
        keystream_speed(dim, _crypto.keystream_into),
        bool(np.array_equal(total, expected)),
        flower_exact,
    )


def robustness(rounds: int, n: int, dim: int, rng: np.random.Generator) -> tuple[int, int]:
    """Rounds that complete with the exact sum when 10 % of nodes drop, each phase in turn.

    Uses our default SecAgg+ degree (14 at n = 100, threshold 8 of 15 holders). A dropout
    between a node's masked update and its confirmation aborts the round by design (its self
    mask comes off only with its consent), so that phase is not among those tried here.
    """
    config = config_for(n, dim)
    credentials, trust = throwaway_cohort(config.participants)
    exact = 0
    for r in range(rounds):
        encoded = {i: config.quantizer.encode(rng.uniform(-1, 1, dim), rng) for i in range(n)}
        dropped = set(rng.choice(n, size=n // 10, replace=False).tolist())
        phase = TOLERATED[r % len(TOLERATED)]
        counted = [i for i in range(n) if phase == "unmask" or i not in dropped]  # masked input arrived
        expected = np.zeros(dim, dtype=np.uint32)
        for i in counted:
            expected += encoded[i]
        try:
            total, _ = run_local_round(config, encoded, drop={phase: dropped}, clients=fresh_clients(config, credentials, trust))
        except RoundAborted:
            continue
        exact += bool(np.array_equal(total, expected))
    return exact, rounds


def flower_robustness(rounds: int, n: int, dim: int, rng: np.random.Generator) -> tuple[int, int]:
    """The same dropout schedule through Flower's SecAgg+, with the same graph and threshold as ours."""
    from flower_secaggplus import STAGES, run_flower_secaggplus

    config = config_for(n, dim)
    exact = 0
    for r in range(rounds):
        dropped = set(rng.choice(n, size=n // 10, replace=False).tolist())
        result = run_flower_secaggplus(
            n, dim, neighbours=config.degree or n - 1, threshold=config.threshold, drop={STAGES[r % 4]: dropped}, seed=r
        )
        exact += bool(result.completed and result.exact)
    return exact, rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset that runs in under a minute")
    parser.add_argument("--json", type=Path, help="write the grid points as JSON here")
    parser.add_argument("--no-flower", action="store_true", help="skip Flower's SecAgg+")
    parser.add_argument("--robustness-rounds", type=int, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    grid = [(10, 10**5), (50, 10**5), (50, 10**6)] if args.quick else [(n, d) for n in (10, 50, 100) for d in (10**5, 10**6)]
    dropouts = (0.0, 0.1)
    chacha = keystream_speed(10**6, _crypto.chacha20_keystream_into) / 1e9
    aes = keystream_speed(10**6, _crypto.aes256_ctr_keystream_into) / 1e9
    print(
        f"PRG keystream, 4 MB into a preallocated buffer: ChaCha20 {chacha:.2f} GB/s, AES-256-CTR {aes:.2f} GB/s"
        " (masks use AES-256-CTR)"
    )
    header = (
        f"{'n':>4} {'dim':>8} {'deg':>3} {'drop':>5} {'plain s':>8} {'ours s':>8} {'flower s':>9} "
        f"{'ours/plain':>10} {'flower/ours':>11} {'mask/keystream':>14} exact"
    )
    print(header)
    points = []
    for n, dim in grid:
        for dropout in dropouts:
            if args.quick and dim == 10**6 and dropout:
                continue
            p = measure_point(n, dim, dropout, with_flower=not args.no_flower, rng=rng)
            points.append(p)
            flower = f"{p.flower_s:9.3f}" if p.flower_s is not None else f"{'-':>9}"
            ratio = f"{p.flower_s / p.ours_s:11.1f}" if p.flower_s is not None else f"{'-':>11}"
            verdict = f"ours {'yes' if p.ours_exact else 'NO'}" + (
                "" if p.flower_exact is None else f", flower {'yes' if p.flower_exact else 'NO'}"
            )
            print(
                f"{n:>4} {dim:>8} {p.degree:>3} {dropout:>5.0%} {p.plain_s:>8.3f} {p.ours_s:>8.3f} {flower} "
                f"{p.ours_s / p.plain_s:>10.1f} {ratio} "
                f"{p.mask_bytes_per_s / p.keystream_bytes_per_s:>14.2f} {verdict}"
            )
    rounds = args.robustness_rounds if args.robustness_rounds is not None else (20 if args.quick else 100)
    if rounds:
        exact, total = robustness(rounds, 100, 1000, rng)
        print(
            f"robustness, ours: n=100, 10% dropping at each tolerated phase: {exact}/{total} rounds exact ({exact / total:.0%})"
        )
        if not args.no_flower:
            flower_rounds = max(4, rounds // 5)
            exact, total = flower_robustness(flower_rounds, 100, 1000, rng)
            print(f"robustness, Flower SecAgg+ (same graph and threshold): {exact}/{total} rounds exact ({exact / total:.0%})")
    if args.json:
        args.json.write_text(json.dumps([asdict(p) for p in points], indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
