"""The report of a comparison repeated over seeds: every figure with its spread, and where federation does not pay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt

MANY_PARTIES = 20  # beyond this, per-party rows give way to the best and worst parties and a plot
SHOWN = 5  # best and worst parties listed per topology when there are many


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pm(figure: dict[str, float | None]) -> str:
    return f"{_f(figure['mean'])} ± {_f(figure['sd'])}"


def _gain(p: dict[str, Any]) -> str:
    interval = f" [{_f(p['gain_low'])}, {_f(p['gain_high'])}]" if p["gain_low"] is not None else ""
    mark = " (significantly worse)" if p["significantly_hurt"] else " (significantly better)" if p["significantly_better"] else ""
    return f"{_f(p['gain'], 3)}{interval}{mark}"


def gain_against_size(summary: dict[str, Any], path: Path) -> Path:
    """Every party's mean gain against local-only, by its size: do small parties gain, do large ones lose?"""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    sizes = summary["sizes"]
    for name, top in summary["topologies"].items():
        if name == "local-only":
            continue
        parties = [p for p, s in top["per_party"].items() if s["gain"] is not None]
        ax.scatter([max(sizes[p], 1) for p in parties], [top["per_party"][p]["gain"] for p in parties], label=name, s=18)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("records at the party (as it describes them, rounded)")
    ax.set_ylabel(f"gain in {summary['metric']} against local-only")
    ax.set_title(f"Mean gain over {len(summary['seeds'])} seeds, per party")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render_seeds(summary: dict[str, Any], run_dir: Path) -> Path:
    """`report.md` of a seeded comparison, beside `parties.csv`, `summary.json` and one run directory per seed."""
    metric, seeds, parties = summary["metric"], summary["seeds"], summary["parties"]
    lines = [
        f"# Comparison over {len(seeds)} seeds ({metric})",
        "",
        f"Seeds {', '.join(map(str, seeds))}: each re-draws every party's train/test split (drawn by the party "
        "from its own secret seed), the validation rows, initial weights, shuffling and secure-aggregation masks. "
        "Each seed's full report is in "
        "`seed-<n>/`; one row per party, seed and topology is in `parties.csv`. Gains are against local-only, paired "
        "by party and seed (positive = better), with 95 % bootstrap intervals over seeds.",
        "",
    ]
    if not summary["reliable"]:
        lines += ["**Fewer than 5 seeds: the intervals below are too narrow to trust.**", ""]
    if not summary["topologies"]:
        lines += [summary.get("note", "no results"), ""]
        return _write(run_dir, lines)
    lines += [
        "| topology | pooled test rows | mean over parties | mean gain | parties hurt | significantly hurt | "
        "smallest quarter's gain |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, top in summary["topologies"].items():
        hurt = "–" if name == "local-only" else f"{_f(top['share_hurt'], 2)}"
        significant = "–" if name == "local-only" else f"{_f(top['share_significantly_hurt'], 2)}"
        lines.append(
            f"| {name} | {_pm(top['pooled'])} | {_pm(top['mean_over_parties'])} | {_f(top['mean_gain'])} | {hurt} | "
            f"{significant} | {_f(top['smallest_quartile_gain'])} |"
        )
    lines.append("")
    lines += [s for s in (top.get("disagreement") for top in summary["topologies"].values()) if s]
    lines += ["", "## Where federation does not pay", ""]
    losers = [
        f"- {name}: {party} {_gain(p)}"
        for name, top in summary["topologies"].items()
        if name != "local-only"
        for party, p in top["per_party"].items()
        if p["gain"] is not None and p["gain"] < 0
    ]
    lines += losers or ["Every party gained against its local-only model under every topology."]
    if summary["small_parties"]:
        lines += ["", "Too few records for a trustworthy local model (their local-only figures are noise):"]
        lines += [f"- {party}: {reason}" for party, reason in summary["small_parties"].items()]
    lines += ["", "## Per party", ""]
    others = [n for n in summary["topologies"] if n != "local-only"]
    local = summary["topologies"]["local-only"]["per_party"]
    if len(parties) <= MANY_PARTIES:
        lines += [
            "| party | records | local-only | " + " | ".join(f"{n} (gain [95 % CI])" for n in others) + " |",
            "|---" * (3 + len(others)) + "|",
        ]
        for party in parties:
            cells = [
                f"{_pm(summary['topologies'][n]['per_party'][party])}, {_gain(summary['topologies'][n]['per_party'][party])}"
                for n in others
            ]
            lines.append(f"| {party} | {summary['sizes'][party]} | {_pm(local[party])} | " + " | ".join(cells) + " |")
    else:
        for name in others:
            ranked = sorted(
                ((p, s) for p, s in summary["topologies"][name]["per_party"].items() if s["gain"] is not None),
                key=lambda item: item[1]["gain"],
            )
            lines += [f"**{name}**, worst {SHOWN}: " + "; ".join(f"{p} {_gain(s)}" for p, s in ranked[:SHOWN])]
            lines += [f"best {SHOWN}: " + "; ".join(f"{p} {_gain(s)}" for p, s in ranked[-SHOWN:][::-1]), ""]
        lines += [f"All {len(parties)} parties are in `parties.csv`."]
    lines += ["", f"![gain against party size]({gain_against_size(summary, run_dir / 'gain_vs_size.png').name})", ""]
    return _write(run_dir, lines)


def _write(run_dir: Path, lines: list[str]) -> Path:
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
