"""A SYNTHETIC two-party city for private set intersection at scale: two large registers of firms.

The water bureau (the receiver) and the power utility each hold a register
of N firms keyed by the unified social credit code, of which a share
`overlap` are the same firms. Everything a run needs is written into one
folder: the registers (CSV), each party's manifest, schema and policy, and
the PSI experiment file, with the PKI and state directories inside it, so
a benchmark or a test can start two real node processes from it. The codes
are drawn at random with valid check characters; nothing here is real.

    python examples/psi_pair/generate.py --out DIR [--keys 1000000] [--overlap 0.5] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

ALPHABET = np.frombuffer(b"0123456789ABCDEFGHJKLMNPQRTUWXY", dtype=np.uint8)
WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
RECEIVER, SENDER = "water-bureau", "power-utility"
COLUMN = {RECEIVER: ("intake", "intake_per_day", "m^3/day"), SENDER: ("electricity", "kwh", "kWh/month")}


def codes(n: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct valid codes (GB 32100-2015 check character), as a sorted array of str."""
    out: np.ndarray = np.array([], dtype="U18")
    while len(out) < n:
        body = rng.integers(0, 31, size=(2 * (n - len(out)) + 16, 17))
        check = (31 - (body @ WEIGHTS) % 31) % 31
        chars = ALPHABET[np.hstack([body, check[:, None]])]
        drawn = chars.astype(np.uint8).view("S18").ravel().astype("U18")
        out = np.unique(np.concatenate([out, drawn]))
    return rng.permutation(out)[:n]


def write_party(out: Path, party: str, keys: np.ndarray, rng: np.random.Generator) -> None:
    canonical, local, unit = COLUMN[party]
    frame = pd.DataFrame({"uscc": keys, local: np.round(rng.lognormal(6, 1, size=len(keys)), 1)})
    frame.to_csv(out / "data" / f"{party}.csv", index=False)
    (out / "schemas" / f"{party}.toml").write_text(
        f'name = "psi-pair-{party}"\ndescription = "SYNTHETIC register of {party}."\n\n'
        f'[[field]]\nname = "{canonical}"\ntype = "float"\nunit = "{unit}"\nmin = 0.0\nrequired = false\n'
    )
    (out / "nodes" / f"{party}.toml").write_text(
        f'[node]\nid = "{party}"\nkind = "{"firm" if party == SENDER else "department"}"\n'
        f'description = "SYNTHETIC register of {party}"\n\n'
        f'[data]\npath = "../data/{party}.csv"\nschema = "../schemas/{party}.toml"\nmissing = [""]\n\n'
        f'[data.columns]\n{canonical} = {{ column = "{local}", unit = "{unit}" }}\n\n'
        f'[keys]\ncolumn = "uscc"\nrule = "uscc-gb32100-2015/v1"\n\n'
        f'[policy]\npath = "../policies/{party}.toml"\n\n[tls]\ndir = "../.pki"\n\n'
        f'[peers]\naccept = "pinned"\npins = "../.pki/psi-pair-peers.toml"\n\n[state]\ndir = "../.state/{party}"\n'
    )
    told = f'membership_to = ["{RECEIVER}"], count_to = ["coordinator"]'  # the platform may learn how many, never which
    (out / "policies" / f"{party}.toml").write_text(
        f'party = "{party}"\ndefault = "deny"\n\n[[rule]]\nname = "find the firms both registers hold"\n'
        f'recipients = ["city-platform"]\npurposes = ["register-match"]\nrelease = "stats"\n'
        f"psi = {{ {told}, min_intersection = 10 }}\n"
    )


def generate(out: Path, *, keys: int = 1_000_000, overlap: float = 0.5, seed: int = 0) -> dict[str, int]:
    """Write the city into `out`; returns the set sizes and the true intersection size."""
    rng = np.random.default_rng(seed)
    shared = round(keys * overlap)
    drawn = codes(2 * keys - shared, rng)
    sets = {RECEIVER: drawn[:keys], SENDER: drawn[keys - shared :]}
    for folder in ("data", "schemas", "nodes", "policies"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for party, party_keys in sets.items():
        write_party(out, party, party_keys, rng)
    nodes = "".join(f'\n[[node]]\nid = "{p}"\nmanifest = "nodes/{p}.toml"\n' for p in sets)
    (out / "psi.toml").write_text(
        'kind = "psi"\nname = "psi-pair"\npurpose = "register-match"\ncoordinator = "city-platform"\n'
        f'pki = ".pki"\noutput = "runs"\ntimeout = 1800\n\n[psi]\nreceiver = "{RECEIVER}"\nmembership = []\n'
        f'count = ["coordinator"]\n{nodes}'
    )
    return {RECEIVER: keys, SENDER: keys, "shared": shared}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(generate(args.out, keys=args.keys, overlap=args.overlap, seed=args.seed))


if __name__ == "__main__":
    main()
