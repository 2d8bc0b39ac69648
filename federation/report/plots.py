"""The comparison's plots, written as PNG files next to the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator


def _nan(v: float | None) -> float:
    return float("nan") if v is None else v


def _started(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in results["topologies"] if t["started"]]


def metric_per_node(results: dict[str, Any], path: Path) -> Path:
    metric, nodes, tops = results["metric"], results["nodes"], _started(results)
    labels = [*nodes, "overall"]
    width = 0.8 / max(len(tops), 1)
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(labels)), 4.2))
    for i, top in enumerate(tops):
        values = [_nan(top["per_node"].get(n, {}).get(metric)) for n in nodes] + [_nan(top["overall"][metric])]
        ax.bar(np.arange(len(labels)) + i * width - 0.4 + width / 2, values, width, label=top["name"])
    ax.set_xticks(np.arange(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel(metric.upper())
    if metric in ("auc", "accuracy"):
        ax.set_ylim(0.4 if metric == "auc" else 0.0, 1.0)
    ax.set_title(f"Test {metric.upper()} per node (each node's own test split)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curves(results: dict[str, Any], path: Path) -> Path:
    metric = results["metric"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for top in _started(results):
        values = [_nan(v) for v in top["curve"][metric]]
        ax.plot(range(1, len(values) + 1), values, marker=".", label=top["name"])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round (local epochs per round are equal in every topology)")
    ax.set_ylabel(f"overall {metric.upper()}")
    ax.set_title("Learning curves")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def gains(results: dict[str, Any], path: Path) -> Path:
    nodes, series = results["nodes"], results["gain_vs_local_only"]
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(7, 1.2 * len(nodes)), 4.2))
    for i, (name, per_node) in enumerate(series.items()):
        values = [_nan(per_node.get(n)) for n in nodes]
        ax.bar(np.arange(len(nodes)) + i * width - 0.4 + width / 2, values, width, label=name)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(nodes)), nodes, rotation=20, ha="right")
    ax.set_ylabel(f"{results['metric'].upper()} minus local-only")
    ax.set_title("What each node gains against training alone")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def data_moved(results: dict[str, Any], path: Path) -> Path:
    nodes, tops = results["nodes"], _started(results)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.8 / max(len(tops), 1)
    for i, top in enumerate(tops):
        x = np.arange(len(nodes)) + i * width - 0.4 + width / 2
        left.bar(x, [top["raw_records_out"].get(n, 0) for n in nodes], width, label=top["name"])
        right.bar(x, [top["bytes_out"].get(n, 0) / 1e6 for n in nodes], width, label=top["name"])
    for ax, title in ((left, "raw records that left each node"), (right, "MB that left each node")):
        ax.set_xticks(np.arange(len(nodes)), nodes, rotation=20, ha="right")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
