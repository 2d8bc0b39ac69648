"""The report of a vertical comparison: the three arrangements side by side, the lift, the disclosures, what each learned.

Every figure is a mean over the split seeds with its standard deviation;
where the vertical run does not pay (against the pool it can only lose
accuracy, and it costs time and bytes) the report says so in words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt
import numpy as np

MEASURES = (("auc", "AUC"), ("precision_at_k", "precision at k"), ("recall_at_k", "recall at k"))


def _values(arrangement: dict[str, Any], measure: str) -> list[float]:
    return [float(r["measures"][measure]) for r in arrangement["runs"] if r.get("measures")]


def _spread(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _fmt(values: list[float]) -> str:
    mean, sd = _spread(values)
    return "n/a" if mean != mean else f"{mean:.3f}±{sd:.3f}"


def _paired(better: dict[str, Any], worse: dict[str, Any], measure: str) -> list[float]:
    """Per seed, `better`'s measure minus `worse`'s: both saw the same split, so the split's own luck cancels."""
    theirs = {r["seed"]: float(r["measures"][measure]) for r in worse["runs"] if r.get("measures")}
    return [
        float(r["measures"][measure]) - theirs[r["seed"]] for r in better["runs"] if r.get("measures") and r["seed"] in theirs
    ]


def _clearly(differences: list[float]) -> bool:
    """Positive in every seed and more than twice its standard error above zero."""
    mean, sd = _spread(differences)
    return len(differences) > 1 and min(differences) > 0 and mean > 2 * sd / np.sqrt(len(differences))


def _by_kind(results: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((a for a in results["arrangements"] if a["kind"] == kind and a["runs"] and not a["refused"]), None)


def _k(results: dict[str, Any]) -> str:
    ks = sorted({r["measures"]["k"] for a in results["arrangements"] for r in a["runs"] if r.get("measures")})
    tests = sorted({r["measures"]["test_firms"] for a in results["arrangements"] for r in a["runs"] if r.get("measures")})
    return f"k = {'/'.join(map(str, ks)) or '?'} inspections of {'/'.join(map(str, tests)) or '?'} labelled test firms"


def _top(results: dict[str, Any]) -> int:
    ks = [r["measures"]["k"] for a in results["arrangements"] for r in a["runs"] if r.get("measures")]
    return max(ks, default=20)


def summary_header() -> list[str]:
    return ["arrangement", "AUC", "precision@k", "recall@k", "raw rows", "MB/run", "s/run"]


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per arrangement: the measures (mean ± sd over seeds), raw rows and bytes out, wall time."""
    rows = []
    for a in results["arrangements"]:
        if a["refused"]:
            rows.append([a["name"], "refused", "", "", "", "", ""])
            continue
        runs = a["runs"]
        raw = sum(sum(r["raw_rows_by_node"].values()) for r in runs)
        moved = np.mean([sum(r["bytes_by_node"].values()) for r in runs]) if runs else 0.0
        seconds = np.mean([r["seconds"] for r in runs]) if runs else 0.0
        cells = [_fmt(_values(a, m)) if any(r.get("measures") for r in runs) else "not told" for m, _ in MEASURES]
        rows.append([a["name"], *cells, str(raw), f"{moved / 1e6:.2f}", f"{seconds:.1f}"])
    return rows


def verdicts(results: dict[str, Any]) -> list[str]:
    """Plain sentences: how close the vertical run comes to the pool, what it buys over the label party alone, and its cost."""
    vertical, pool, local = (_by_kind(results, k) for k in ("vertical", "central-pool", "local-only"))
    out = []
    if vertical and pool:
        gap = abs(_spread(_paired(pool, vertical, "auc"))[0])
        out.append(
            f"Vertical federation matches the central pool's AUC to within {max(gap, 5e-4):.4f}: computing on shares "
            "costs the model almost nothing, and no department handed over a record."
        )
        time_ratio = np.mean([r["seconds"] for r in vertical["runs"]]) / max(np.mean([r["seconds"] for r in pool["runs"]]), 1e-9)
        out.append(
            f"It does not pay in time or traffic: a vertical run takes {time_ratio:.0f}x the central pool's wall time "
            "here (hand-over and fit) and sends megabytes of shares where the pool moved each table once."
        )
    if vertical and local:
        for measure, title in MEASURES[:2]:
            differences = _paired(vertical, local, measure)
            mean, sd = _spread(differences)
            verdict = "clearly" if _clearly(differences) else "not clearly: the seeds disagree or the gain is within their noise"
            out.append(
                f"Against the label party alone it gains {mean:+.3f} ± {sd:.3f} {title} over the same splits "
                f"(better in {sum(d > 0 for d in differences)} of {len(differences)} seeds; {verdict})."
            )
    for department, runs in sorted(results.get("lift", {}).items()):
        if pool is None:
            break
        lost = _spread(_values(pool, "auc"))[0] - _spread([float(r["auc"]) for r in runs])[0]
        if lost < 0.005:
            out.append(f"{department}'s columns add less than 0.005 AUC: the bureau would lose little if it refused.")
    return out


def learned(results: dict[str, Any]) -> dict[str, str]:
    """One sentence per party (and the platform) on what it learned, from the terms' roles and the PSI grants."""
    label = results["label"]
    told = results["psi"].get("told", {})
    count = results["psi"].get("coordinator_count")
    roles = {a["kind"] for a in results["arrangements"] if a["runs"]}
    out = {}
    for party in results["parties"]:
        psi = {"membership": "which of its firms all parties share", "count": "how many firms are shared"}.get(
            told.get(party, ""), "nothing of the intersection"
        )
        if party == label:
            text = (
                f"PSI: {psi}. Vertical: its own weights, the validation losses, and the joint scores of the shared firms "
                "(it keeps only their ranking on disk)."
            )
        else:
            text = f"PSI: {psi}. Vertical: its own weights and gradients and when training stopped; shares it saw are uniform."
        if "central-pool" in roles:
            text += " Central pool: nothing, but it handed its whole table to the platform."
        out[party] = text
    platform = f"PSI: {'the count, ' + str(count) if count is not None else 'nothing but the set sizes'}."
    platform += (
        " Vertical: who sent how much to whom and when training stopped, and the test measures the label party's policy releases."
    )
    if "central-pool" in roles:
        platform += " Central pool: every party's columns for every firm it knows, with the firms' keys."
    out["the platform (coordinator)"] = platform
    return out


def plot(results: dict[str, Any], path: Path) -> Path:
    arrangements = [a for a in results["arrangements"] if a["runs"] and not a["refused"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / max(len(arrangements), 1)
    for i, a in enumerate(arrangements):
        stats = [_spread(_values(a, m)) for m, _ in MEASURES]
        x = np.arange(len(MEASURES)) + i * width - 0.4 + width / 2
        left.bar(x, [s[0] for s in stats], width, yerr=[s[1] for s in stats], capsize=3, label=a["name"])
    left.set_xticks(np.arange(len(MEASURES)), [t for _, t in MEASURES])
    left.set_ylim(0, 1)
    left.set_title(f"Test measures, mean ± sd over seeds\n{_k(results)}", fontsize=9)
    left.legend(fontsize=8)
    pool = _by_kind(results, "central-pool")
    lift = results.get("lift", {})
    if pool and lift:
        base = _spread(_values(pool, "auc"))[0]
        names = sorted(lift)
        lost = [base - _spread([float(r["auc"]) for r in lift[n]])[0] for n in names]
        right.barh(names, lost)
        right.set_xlabel("AUC the label party loses without the department")
        right.set_title("Lift of each department's columns (central pool)", fontsize=9)
    else:
        right.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def render_vertical(results: dict[str, Any], run_dir: Path) -> Path:
    """report.md and its plot in `run_dir`."""
    image = plot(results, run_dir / "vertical.png")
    label = results["label"]
    pool = _by_kind(results, "central-pool")
    seeds = max((len(a["runs"]) for a in results["arrangements"]), default=0)
    lift_rows = []
    for department, runs in sorted(results.get("lift", {}).items()):
        base = {m: _spread(_values(pool, m))[0] for m, _ in MEASURES} if pool else {}
        without = {m: _spread([float(r[m]) for r in runs])[0] for m, _ in MEASURES}
        lift_rows.append(
            [department, _fmt([float(r["auc"]) for r in runs]), *(f"{base[m] - without[m]:+.3f}" for m, _ in MEASURES[:2])]
        )
    psi = results["psi"]
    psi_rows = [
        [p, str(psi["set_sizes"].get(p, "?")), psi["told"].get(p, "nothing"), f"{psi['bytes_by_node'].get(p, 0) / 1e3:.0f} kB"]
        for p in results["parties"]
    ]
    node_rows = []
    for p in results["parties"]:
        cells = [p]
        for a in results["arrangements"]:
            runs = a["runs"]
            rows = sum(r["raw_rows_by_node"].get(p, 0) for r in runs)
            moved = np.mean([r["bytes_by_node"].get(p, 0) for r in runs]) if runs else 0
            cells.append(f"{rows} rows / {moved / 1e3:.0f} kB" if runs else "refused")
        node_rows.append(cells)
    refusals = [f"- **{a['name']}** refused: " + "; ".join(a["refused"]) for a in results["arrangements"] if a["refused"]]
    count = psi.get("coordinator_count")
    text = f"""# {results["experiment"]}: vertical federated vs central pool vs {label} alone

Every arrangement uses the firms that all {len(results["parties"])} parties hold (found by private set
intersection, run {psi["run_id"]}), the same train / validation / test split per seed, the same logistic
regression and early stopping on the same validation rows. Figures are mean ± sd over {seeds} split seeds;
{_k(results)}.

{_table(summary_header(), summary_rows(results))}

![test measures and lift]({image.name})

## What this says

{chr(10).join("- " + v for v in verdicts(results))}

## Lift of each department (what {label} would lose if it refused)

Measured on the central pool's joined table (the same rows, split and model), leaving one department out.

{_table(["department", "AUC without it", "AUC lost", "precision at k lost"], lift_rows) if lift_rows else "Not measured."}

## Private set intersection: what was disclosed

Rule {psi["rule"]}; receiver {psi["receiver"]}; the platform was told
{"the count, " + str(count) if count is not None else "no count (only the set sizes, which the adverts carry)"}.

{_table(["party", "distinct keys", "told", "bytes from node"], psi_rows)}

## Raw rows and bytes out, per node (summed rows, mean bytes per run)

{_table(["node", *(a["name"] for a in results["arrangements"])], node_rows)}

## What each party learned

{chr(10).join(f"- **{party}**: {text}" for party, text in learned(results).items())}

## Whom the vertical run protects against, and what it cannot

The parties are honest-but-curious, and no two of the label party, the second compute party and the
helper collude; any other party may collude with one of them. The platform only routes letters sealed
between the parties (AES-GCM under keys from signed X25519 adverts, each letter numbered), so it cannot
read, replay, reorder or forge them, add a party or choose the rows (they are the firms of the named PSI run).
It cannot be hidden from the platform how many letters and bytes each party sends and at which step training
stopped. The label party learns the joint scores of the shared firms, its declared output.
{chr(10).join(refusals)}

## Ranking for the next inspection round

Each vertical run leaves the ranking of the shared firms by predicted risk with {label} only, in its
node's state directory; the platform never sees it. {label}'s staff read it on their own machine:
`federation score {label}-MANIFEST.toml --top {_top(results)}`.
"""
    path = run_dir / "report.md"
    path.write_text(text, encoding="utf-8")
    return path
