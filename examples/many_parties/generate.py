"""A SYNTHETIC federation of 131 local authorities, the shape of a real one, for running many parties on one machine.

Each authority holds a few pupils' records (from 7 to about 1,000, log-uniform,
as real authorities differ) with four numeric features and a binary outcome
drawn from one shared logistic model plus an authority-specific intercept.
Everything a run needs is written into one folder: the data (CSV), one
manifest and one policy per authority, the shared schema and the experiment
file, with the PKI and state directories inside it. Nothing here is real.

    python examples/many_parties/generate.py --out DIR [--parties 131] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ("attendance", "prior_score", "deprivation", "class_size")
WEIGHTS = np.array([1.2, 1.6, -0.9, -0.3])

SCHEMA = (
    """name = "many-parties"
description = "SYNTHETIC pupil records of many local authorities; predict whether a pupil passes."
target = "passed"
"""
    + "".join(
        f'\n[[field]]\nname = "{name}"\ntype = "float"\nrequired = false\n'
        f'description = "A standardised {name.replace("_", " ")}."\n'
        for name in FEATURES
    )
    + '\n[[field]]\nname = "passed"\ntype = "bool"\ndescription = "Whether the pupil passed."\n'
)


COLUMNS = "\n".join(f'{name} = "{name}"' for name in (*FEATURES, "passed"))


def authority(index: int) -> str:
    return f"authority-{index:03d}"


def generate(out: Path, *, parties: int = 131, seed: int = 0) -> dict[str, int]:
    """Write the federation into `out`; returns each authority's number of records."""
    rng = np.random.default_rng(seed)
    sizes = np.round(np.exp(rng.uniform(np.log(7), np.log(1000), size=parties))).astype(int)
    for folder in ("data", "nodes", "policies"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    (out / "schema.toml").write_text(SCHEMA)
    counts = {}
    for index, size in enumerate(sizes):
        name = authority(index)
        x = rng.normal(size=(size, len(FEATURES))) + rng.normal(scale=0.3, size=len(FEATURES))  # covariate shift
        logit = x @ WEIGHTS + rng.normal(scale=0.5) - 0.2
        passed = rng.random(size) < 1 / (1 + np.exp(-logit))
        frame = pd.DataFrame(np.round(x, 4), columns=list(FEATURES)).assign(passed=passed)
        frame.to_csv(out / "data" / f"{name}.csv", index=False)
        (out / "nodes" / f"{name}.toml").write_text(
            f'[node]\nid = "{name}"\nkind = "department"\ndescription = "SYNTHETIC local authority {index}"\n\n'
            f'[data]\npath = "../data/{name}.csv"\nschema = "../schema.toml"\n\n'
            f"[data.columns]\n{COLUMNS}\n"
            f'[split]\ntest_fraction = 0.3\nseed = {index}\n\n[policy]\npath = "../policies/{name}.toml"\n\n'
            f'[tls]\ndir = "../.pki"\n\n[state]\ndir = "../.state/{name}"\n'
        )
        (out / "policies" / f"{name}.toml").write_text(
            f'party = "{name}"\ndefault = "deny"\n\n[[rule]]\nname = "pass-rate model with the platform"\n'
            'recipients = ["city-platform"]\npurposes = ["pass-rates"]\nrelease = "raw"\nmin_cohort = 3\n'
            'models = ["logreg"]\nmax_rounds = 100\n'
        )
        counts[name] = int(size)
    nodes = "".join(f'\n[[node]]\nid = "{authority(i)}"\nmanifest = "nodes/{authority(i)}.toml"\n' for i in range(parties))
    (out / "experiment.toml").write_text(
        'name = "many-parties"\npurpose = "pass-rates"\ncoordinator = "city-platform"\npki = ".pki"\noutput = "runs"\n'
        'topologies = ["federated", "central-pool", "local-only"]\ntimeout = 600\n\n'
        f'[task]\nmodel = "logreg"\nfeatures = {list(FEATURES)}\ntarget = "passed"\nrounds = 10\nlocal_epochs = 1\n'
        'batch_size = 32\nlearning_rate = 0.05\nseed = 1\nmetric = "auc"\n\n[federated]\nstrategies = ["fedavg"]\n'
        f'\n[secure_aggregation]\nmode = "auto"\n{nodes}'
    )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--parties", type=int, default=131)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = generate(args.out, parties=args.parties, seed=args.seed)
    print(f"{len(counts)} authorities, {min(counts.values())} to {max(counts.values())} records each")


if __name__ == "__main__":
    main()
