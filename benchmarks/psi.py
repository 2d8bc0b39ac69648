"""What private set intersection costs, as ratios measured in one run, without a network.

For each set size n (every party holds n keys, overlapping at random) it
times, on this machine:

  (a) the multi-party protocol (`psi.multi_party`, 3 and 5 parties): the
      receiver's OPRF queries, each sender's answer (OPRF evaluation, own
      PRF values, programmed table) and the receiver's combination;
  (b) the two-party Diffie-Hellman protocol (`psi.two_party`) on the same
      two sets, the baseline the multi-party protocol pays for hiding
      partial overlaps;
  (c) the plaintext join of the same sets (a Python set intersection), the
      floor no private protocol reaches.

It prints seconds, bytes per key and the ratios (a)/(b) and (a)/(c), and
checks every result against the plaintext join.

    python benchmarks/psi.py [--sizes 1000,3000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from federation.policy.model import PsiClause
from federation.psi.multi_party import Receiver, Sender
from federation.psi.plan import Disclosure, Granted
from federation.psi.session import Party, Terms
from federation.psi.two_party import Receiver as TwoReceiver
from federation.psi.two_party import Sender as TwoSender
from federation.psi.uscc import RULE, check_character
from federation.trust.authority import throwaway_cohort

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def codes(n: int, rng: random.Random) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        body = "".join(rng.choice(ALPHABET) for _ in range(17))
        out.add(body + check_character(body))
    return sorted(out)


def multi_party(sets: dict[str, list[str]]) -> tuple[set[str], dict[str, float], int]:
    """(shared keys, seconds by stage, bytes the coordinator relays)."""
    names = sorted(sets)
    credentials, trust = throwaway_cohort(names)
    terms = Terms("bench", tuple(names), names[0], RULE, Disclosure(tuple(names), ()))
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    parties: dict[str, Party] = {
        n: (Receiver if n == names[0] else Sender)(terms, sets[n], min_intersection=1, signer=credentials[n]) for n in names
    }
    adverts = {n: p.advert for n, p in parties.items()}
    for party in parties.values():
        party.admit(adverts, trust)
    seconds["adverts"] = time.perf_counter() - started
    receiver = parties[names[0]]
    assert isinstance(receiver, Receiver)
    began = time.perf_counter()
    queries = receiver.queries()
    seconds["receiver queries"] = time.perf_counter() - began
    responses, slowest = {}, 0.0
    for sender, query in queries.items():
        party = parties[sender]
        assert isinstance(party, Sender)
        began = time.perf_counter()
        responses[sender] = party.respond(query)
        slowest = max(slowest, time.perf_counter() - began)
    seconds["one sender (slowest)"] = slowest
    began = time.perf_counter()
    outcome = receiver.finish(responses, {n: Granted("bench", PsiClause(membership_to=("*",))) for n in names})
    seconds["receiver finish"] = time.perf_counter() - began
    # senders answer in parallel on their own machines: the run's critical path
    seconds["critical path"] = seconds["receiver queries"] + slowest + seconds["receiver finish"]
    relayed = sum(len(q) for q in queries.values()) + sum(len(r) for r in responses.values())
    relayed += sum(len(d) for d in outcome.sealed.values())
    assert outcome.delivery.shared is not None
    return {receiver.keys[i] for i in outcome.delivery.shared}, seconds, relayed


def two_party(receiver_keys: list[str], sender_keys: list[str]) -> tuple[set[str], float]:
    started = time.perf_counter()
    receiver = TwoReceiver(receiver_keys, run_id="bench", rule=RULE)
    sender = TwoSender(sender_keys, run_id="bench", rule=RULE)
    shared, _ = receiver.finish(sender.respond(receiver.first(), reveal_membership=True))
    assert shared is not None
    return set(shared), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,3000", help="comma-separated keys per party")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        rng = random.Random(n)
        pool = codes(int(n * 1.4), rng)
        for count in (3, 5):
            sets = {f"party-{i}": rng.sample(pool, n) for i in range(count)}
            truth = set.intersection(*(set(s) for s in sets.values()))
            started = time.perf_counter()
            plain = set.intersection(*(set(s) for s in sets.values()))
            plain_seconds = time.perf_counter() - started
            shared, stages, relayed = multi_party(sets)
            first, second = sets["party-0"], sets["party-1"]
            pair, pair_seconds = two_party(first, second)
            assert shared == truth == plain and pair == set(first) & set(second), "a result differs from the plaintext join"
            row = {
                "keys_per_party": n,
                "parties": count,
                "shared": len(truth),
                "multi_party_seconds": stages,
                "two_party_seconds": pair_seconds,
                "plaintext_seconds": plain_seconds,
                "relayed_bytes_per_key": relayed / (n * count),
                "critical_path_over_two_party": stages["critical path"] / pair_seconds,
                "critical_path_over_plaintext": stages["critical path"] / max(plain_seconds, 1e-9),
            }
            rows.append(row)
            print(
                f"n={n:>6} parties={count}: shared {len(truth):>5}  critical path {stages['critical path']:6.2f} s "
                f"(receiver {stages['receiver queries']:.2f} + sender {stages['one sender (slowest)']:.2f} "
                f"+ finish {stages['receiver finish']:.2f})  two-party {pair_seconds:5.2f} s  "
                f"ratio {row['critical_path_over_two_party']:4.1f}x  vs plaintext {row['critical_path_over_plaintext']:,.0f}x  "
                f"{row['relayed_bytes_per_key']:.0f} B/key relayed"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
