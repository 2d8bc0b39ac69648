"""The sweep report: trade-off curves against every varied value, and what was refused."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt

from federation.experiments.sweep import SweepPoint, Variation


def _name(value: Any) -> str:
    return "inf" if isinstance(value, float) and math.isinf(value) else str(value)


def _topologies(points: Sequence[SweepPoint]) -> list[str]:
    names: list[str] = []
    for p in points:
        for t in (p.results or {}).get("topologies", []):
            base = t["name"].replace(" (central DP)", "")
            if base not in names:
                names.append(base)
    return names


def _lookup(point: SweepPoint, topology: str) -> dict[str, Any] | None:
    for t in (point.results or {}).get("topologies", []):
        if t["name"].replace(" (central DP)", "") == topology and t["started"]:
            return t  # type: ignore[no-any-return]
    return None


def _series(points: Sequence[SweepPoint], variation: Variation, others: dict[str, Any]) -> list[SweepPoint]:
    chosen = []
    for value in variation.values:
        match = next(
            (
                p
                for p in points
                if p.combination[variation.key] == value and all(p.combination[k] == v for k, v in others.items())
            ),
            None,
        )
        if match is not None:
            chosen.append(match)
    return chosen


def _figure(path: Path, variation: Variation, ylabel: str, title: str, lines: dict[str, list[float]]) -> Path:
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    x = list(range(len(variation.values)))
    for label, ys in lines.items():
        ax.plot(x, ys, marker="o", label=label)
    ax.set_xticks(x, [_name(v) for v in variation.values])
    ax.set_xlabel(variation.key)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if lines:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render_sweep(points: Sequence[SweepPoint], variations: Sequence[Variation], out_dir: Path, *, metric: str) -> Path:
    """report.md with, for each varied key, the metric, gains, privacy spent and data moved against its values."""
    topologies = _topologies(points)
    sections = []
    for variation in variations:
        others = [v for v in variations if v is not variation]
        first_others = {v.key: v.values[0] for v in others}
        series = _series(points, variation, first_others)
        slug = variation.key.replace("*", "all").replace(".", "_")

        def pick(topology: str, field: Any, series: list[SweepPoint] = series) -> list[float]:
            values = []
            for p in series:
                t = _lookup(p, topology)
                values.append(field(t) if t is not None else float("nan"))
            return values

        metric_plot = _figure(
            out_dir / f"{slug}_{metric}.png",
            variation,
            f"overall {metric.upper()}",
            f"{metric.upper()} against {variation.key}",
            {
                t: pick(t, lambda top: top["overall"][metric] if top["overall"][metric] is not None else float("nan"))
                for t in topologies
            },
        )
        nodes = (series[0].results or {}).get("nodes", []) if series else []
        federated = next((t for t in topologies if t.startswith("federated")), None)
        gain_lines: dict[str, list[float]] = {}
        if federated is not None:
            for node in nodes:
                gains: list[float] = []
                for p in series:
                    g: dict[str, dict[str, float | None]] = (p.results or {}).get("gain_vs_local_only", {})
                    match: dict[str, float | None] = next(
                        (v for k, v in g.items() if k.replace(" (central DP)", "") == federated), {}
                    )
                    value = match.get(node)
                    gains.append(value if value is not None else float("nan"))
                gain_lines[node] = gains
        gain_plot = _figure(
            out_dir / f"{slug}_gain.png",
            variation,
            f"{metric.upper()} minus local-only",
            f"per-node gain of {federated or 'federated'} against local-only",
            gain_lines,
        )
        privacy_lines: dict[str, list[float]] = {}
        for p in series:
            spent = (p.results or {}).get("privacy_spent") or {}
            privacy_lines.setdefault("mean epsilon spent per node", []).append(
                sum(v["epsilon_spent"] for v in spent.values()) / len(spent) if spent else float("nan")
            )
        privacy_plot = _figure(
            out_dir / f"{slug}_privacy.png", variation, "epsilon", "privacy spent (node ledgers)", privacy_lines
        )
        moved_plot = _figure(
            out_dir / f"{slug}_data_moved.png",
            variation,
            "MB out of all nodes",
            "data moved",
            {t: pick(t, lambda top: sum(top["bytes_out"].values()) / 1e6) for t in topologies},
        )
        rows = []
        for p in series:
            cells = []
            for t in topologies:
                top = _lookup(p, t)
                cells.append(f"{top['overall'][metric]:.3f}" if top and top["overall"][metric] is not None else "refused")
            rows.append("| " + " | ".join([_name(p.combination[variation.key]), *cells]) + " |")
        fixed = ", ".join(f"{k}={_name(v)}" for k, v in first_others.items())
        sections.append(
            f"## {variation.key}\n\n"
            + (f"Other varied keys held at {fixed}.\n\n" if fixed else "")
            + "| "
            + " | ".join([variation.key, *topologies])
            + " |\n|"
            + "---|" * (len(topologies) + 1)
            + "\n"
            + "\n".join(rows)
            + f"\n\n![metric]({metric_plot.name})\n![gain]({gain_plot.name})\n"
            + f"![privacy]({privacy_plot.name})\n![moved]({moved_plot.name})\n"
        )
    refused = []
    for p in points:
        label = ", ".join(f"{k}={_name(v)}" for k, v in p.combination.items())
        if p.error:
            refused.append(f"- {label}: {p.error}")
        for t in (p.results or {}).get("topologies", []):
            if not t["started"]:
                reasons = sorted({r for rs in t["refusals"].values() for r in rs})
                refused.append(f"- {label}: {t['name']} not run ({t['note']}); " + "; ".join(reasons[:3]))
    text = (
        f"# Sweep: {len(points)} combination(s) of {', '.join(v.key for v in variations)}\n\n"
        "Each combination ran the full comparison on the same nodes and splits. Federated runs use client-level DP\n"
        "(noise shares added on the nodes), the central pool central DP (the trusted coordinator trains with DP-SGD);\n"
        "local-only models never leave their node and need none.\n\n"
        + "\n".join(sections)
        + "\n## Refused or failed combinations\n\n"
        + ("\n".join(refused) or "None.")
        + "\n"
    )
    path = out_dir / "report.md"
    path.write_text(text)
    return path
