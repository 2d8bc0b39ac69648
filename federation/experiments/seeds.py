"""`compare --seeds N`: the whole comparison once per seed, then every figure with its spread.

Each seed re-draws what a seed decides: each party's train/test split (its
`test_draw` n, so a party's figures average over several test sets instead of
resting on one), the validation rows each party holds out, the models'
initial weights, the shuffling of every epoch and the secure-aggregation
masks. A party draws its split n from its own secret split seed and n: the
coordinator names a draw but cannot choose, or tell, which records it holds
out, and a node grants one caller at most a bounded number of draws. Every seed is a complete run directory (`seed-<n>/`), and the
summary beside them pairs every party's figure with its own local-only figure
of the same seed.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from federation.errors import ConfigError
from federation.experiments.compare import Comparison, ProgressFactory, compare
from federation.experiments.config import Experiment
from federation.models.evaluation import LOWER_IS_BETTER
from federation.report import statistics

PARTIES_CSV = "parties.csv"
SUMMARY_JSON = "summary.json"


def seeds_for(experiment: Experiment, count: int | None) -> list[int]:
    """The seeds to run: the experiment's `[task] seeds`, or `count` of them from its seed on (`--seeds N`)."""
    listed = list(experiment.seeds)
    if count is None:
        return listed or [experiment.task.seed]
    if count < 1:
        raise ConfigError("--seeds", [f"expected at least one seed, got {count}"])
    if listed:
        if count > len(listed):
            raise ConfigError("--seeds", [f"{count} seeds asked for, the experiment lists {len(listed)} in [task] seeds"])
        return listed[:count]
    return [experiment.task.seed + i for i in range(count)]


@dataclass
class SeedRun:
    run_dir: Path
    seeds: list[int]
    comparisons: list[Comparison]
    summary: dict[str, Any]


def compare_seeds(
    experiment: Experiment,
    addresses: dict[str, str],
    seeds: Sequence[int],
    *,
    topologies_to_run: Sequence[str] | None = None,
    progress: ProgressFactory | None = None,
    output_dir: Path | None = None,
) -> SeedRun:
    """Run `compare` once per seed into `<run>/seed-<n>/`, then write `parties.csv` and `summary.json`."""
    run_dir = (output_dir or experiment.output_dir) / (dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-seeds")
    run_dir.mkdir(parents=True, exist_ok=True)
    comparisons = []
    for seed in seeds:
        seeded = copy.copy(experiment)
        seeded.task = replace(experiment.task, seed=seed, test_draw=seed)
        comparisons.append(
            compare(seeded, addresses, topologies_to_run=topologies_to_run, progress=progress, run_dir=run_dir / f"seed-{seed}")
        )
    write_party_rows(run_dir / PARTIES_CSV, list(seeds), comparisons)
    summary = summarise_seeds(list(seeds), comparisons)
    (run_dir / SUMMARY_JSON).write_text(json.dumps(summary, indent=2))
    return SeedRun(run_dir, list(seeds), comparisons, summary)


def write_party_rows(path: Path, seeds: list[int], comparisons: list[Comparison]) -> None:
    """One row per party, seed and topology: the metric of the reported model, so anybody can recompute the summary."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seed", "topology", "party", "metric", "value", "test_records", "approx_records", "chosen_round"])
        for seed, comparison in zip(seeds, comparisons, strict=True):
            for result in comparison.results:
                if not result.started:
                    continue
                final = result.final()
                for party in comparison.nodes:
                    sums = final.get(party)
                    value = sums.metric(comparison.metric) if sums is not None else math.nan
                    writer.writerow(
                        [
                            seed,
                            result.name,
                            party,
                            comparison.metric,
                            "" if math.isnan(value) else round(value, 6),
                            sums.count if sums is not None else "",
                            comparison.sizes.get(party, ""),
                            result.chosen.get(party, len(result.rounds)) if sums is not None else "",
                        ]
                    )


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 6)


def summarise_seeds(seeds: list[int], comparisons: list[Comparison]) -> dict[str, Any]:
    """Mean and sd of every figure over seeds; paired gains against local-only with bootstrap intervals."""
    first = comparisons[0]
    metric, parties = first.metric, first.nodes
    names = [r.name for r in first.results if r.started]
    values: dict[str, dict[str, list[float]]] = {n: {p: [] for p in parties} for n in names}
    pooled: dict[str, list[float]] = {n: [] for n in names}
    for comparison in comparisons:
        by_name = {r.name: r for r in comparison.results if r.started}
        for name in names:
            result = by_name.get(name)
            final = result.final() if result is not None else {}
            pooled[name].append(result.overall(metric) if result is not None else math.nan)
            for party in parties:
                sums = final.get(party)
                values[name][party].append(sums.metric(metric) if sums is not None else math.nan)
    sizes = {p: int(first.sizes.get(p, 0)) for p in parties}
    summary: dict[str, Any] = {
        "seeds": seeds,
        "metric": metric,
        "parties": parties,
        "sizes": sizes,
        "small_parties": statistics.flag_small_parties({p: int(0.8 * s) for p, s in sizes.items()}),
        "reliable": len(seeds) >= statistics.RELIABLE_SEEDS,
        "topologies": {},
    }
    if "local-only" not in names:
        summary["note"] = "local-only did not run, so no gains against it"
        return summary
    figures = statistics.summarise(
        statistics.SeedMetrics(values=values, train_sizes=sizes, higher_is_better=metric not in LOWER_IS_BETTER)
    )
    for name in names:
        top = figures.topology(name)
        one_model = name != "local-only"
        pooled_mean = _mean(pooled[name])
        summary["topologies"][name] = {
            "pooled": {"mean": _clean(pooled_mean), "sd": _clean(_sd(pooled[name]))},
            "mean_over_parties": {"mean": _clean(top.mean_metric), "sd": _clean(top.mean_metric_sd)},
            "mean_gain": _clean(top.mean_gain),
            "share_hurt": _clean(top.share_hurt),
            "share_significantly_hurt": _clean(top.share_significantly_hurt),
            "smallest_quartile": list(top.smallest_quartile),
            "smallest_quartile_gain": _clean(top.smallest_quartile_gain),
            "disagreement": statistics.explain_disagreement(
                name, metric, pooled=pooled_mean, mean_over_parties=top.mean_metric, one_model=one_model
            ),
            "per_party": {
                party: {
                    "mean": _clean(stats.mean),
                    "sd": _clean(stats.sd),
                    "gain": _clean(stats.gain_mean),
                    "gain_low": _clean(stats.gain_low),
                    "gain_high": _clean(stats.gain_high),
                    "significantly_hurt": stats.significantly_hurt,
                    "significantly_better": stats.significantly_better,
                }
                for party in parties
                for stats in [figures.party(name, party)]
            },
        }
    return summary


def _mean(values: list[float]) -> float:
    present = [v for v in values if not math.isnan(v)]
    return sum(present) / len(present) if present else math.nan


def _sd(values: list[float]) -> float:
    present = [v for v in values if not math.isnan(v)]
    if len(present) < 2:
        return math.nan
    mean = sum(present) / len(present)
    return math.sqrt(sum((v - mean) ** 2 for v in present) / (len(present) - 1))
