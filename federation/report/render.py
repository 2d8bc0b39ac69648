"""report.md: what each arrangement bought and cost, per node and overall."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from federation.report import plots


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summary_notes(results: dict[str, Any]) -> list[str]:
    """Why topologies did not run, one line each."""
    return [f"{top['name']}: {top['note']}" for top in results["topologies"] if not top["started"] and top["note"]]


def _chosen(started: list[dict[str, Any]]) -> str:
    parts = []
    for t in started:
        rounds = sorted(set(t.get("chosen_rounds", {}).values()))
        if rounds:
            parts.append(f"{t['name']}: round {', '.join(map(str, rounds))}" if len(rounds) <= 3 else f"{t['name']}: per node")
    return "; ".join(parts) or "no validation rows held out: the last round"


OWN_RESULTS = ("local-only", "personalised")


def own_results_note(topologies: list[dict[str, Any]]) -> list[str]:
    """Why a party that releases only masked updates is missing from local-only and personalised."""
    kept = sorted(
        {
            node
            for t in topologies
            if t["kind"] in OWN_RESULTS
            for node, reasons in t["refusals"].items()
            if any("releases at most" in r for r in reasons)
        }
    )
    if not kept:
        return []
    return [
        "",
        f"{', '.join(kept)}: local-only and personalised results are each one party's own metrics on its own model, "
        "which a policy that releases only masked updates keeps on the node (they could be read like an individual "
        "update). These parties are missing from those topologies, so their gain against local-only cannot be "
        "measured here; federated training, whose results leave only summed, includes them.",
    ]


def _choices_section(started: list[dict[str, Any]]) -> str:
    """Which candidate each party chose under personalisation, and why, in its own words."""
    text = ""
    for t in started:
        choices = t.get("choices") or {}
        if not choices:
            continue
        rows = [
            [node, str(c.get("label", c.get("method", "?"))), "; ".join(str(c[k]) for k in ("reason", "reported") if c.get(k))]
            for node, c in choices.items()
        ]
        text += f"\n## {t['name']}: what each party chose\n\n" + _table(["node", "candidate", "why"], rows) + "\n"
        text += (
            "\nEach party chose on the validation rows it holds out of its training rows, which the global model never "
            "trained on, and kept its default unless another candidate won at a one-sided 95 % level, widened for the "
            "candidates compared. The default is local-only; it is the global model where a party's rows hold too few "
            "events for a trustworthy local model (fewer than 10 of the rarer class per model input). A party that kept "
            "local-only is reported with the local-only topology's model. Only the choice and these words left the party.\n"
        )
    return text


def companion(metric: str) -> str:
    """The second figure beside the headline metric: accuracy for a classifier, RMSE (or R²) for a regression."""
    if metric in ("r2",):
        return "rmse"
    if metric in ("rmse", "mae"):
        return "r2"
    return "accuracy"


def summary_header(metric: str, first: str) -> list[str]:
    return [SUMMARY_HEADER[0], first, companion(metric), *SUMMARY_HEADER[3:]]


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    """Rows of the summary table shared by the report and the terminal."""
    metric = results["metric"]
    rows = []
    for top in results["topologies"]:
        if not top["started"]:
            verdict = "refused" if top["refusals"] else "not run"
            rows.append([top["name"], verdict, "-", "0", "0", "-", f"{len(top['participants'])}/{len(results['nodes'])}"])
            continue
        rows.append(
            [
                top["name"],
                _fmt(top["overall"][metric]),
                _fmt(top["overall"][companion(metric)]),
                str(sum(top["raw_records_out"].values())),
                f"{sum(top['bytes_out'].values()) / 1e6:.2f}",
                f"{top['wall_seconds']:.1f}",
                f"{len(top['participants'])}/{len(results['nodes'])}",
            ]
        )
    return rows


SUMMARY_HEADER = ["topology", "metric", "accuracy", "raw rows out", "MB out", "seconds", "nodes"]


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def secure_summary(top: dict[str, Any]) -> str:
    """Whether aggregation was secure, with the threshold and the dropouts it survived."""
    if not top["secure_aggregation"]:
        return f"{top['name']}: no, plain updates reached the coordinator"
    rounds = top["secure_rounds"]
    completed = [r for r in rounds if not r["aborted"]]
    thresholds = sorted({r["threshold"] for r in rounds})
    survived = sum(len(nodes) for r in completed for nodes in r["dropouts"].values())
    aborted = [r for r in rounds if r["aborted"]]
    why = f" (first: round {aborted[0]['round']}, {aborted[0]['aborted']})" if aborted else ""
    evaluation = (
        "evaluation summed securely over the cohort, so no node's own metrics were released"
        if top.get("evaluation") == "secure-sum"
        else "evaluation per node"
    )
    return (
        f"{top['name']}: yes, threshold {', '.join(map(str, thresholds))}; {len(completed)}/{len(rounds)} rounds completed, "
        f"{survived} dropout(s) survived" + (f", {len(aborted)} round(s) aborted{why}" if aborted else "") + f"; {evaluation}"
    )


TRUST_NOTE = """## Whom these guarantees protect against

Under secure aggregation every node counts the cohort itself: it checks each participant's
signed keys against the certificates it accepts (pinned fingerprints, or the federation's CA)
and signs the survivor set, so a coordinator cannot invent parties or tell nodes different
stories about who dropped. For plain (unmasked) statistics, updates and evaluations the cohort
a node compares with its minimum is the coordinator's declaration: those releases rely on the
node's policy allowing individual results. What a released aggregate itself reveals (for
example differences between runs over different cohorts) is limited only by differential
privacy, where a policy asks for it.
"""


def _quality_section(results: dict[str, Any]) -> str:
    quality = results.get("quality") or {}
    quantiles = results.get("feature_quantiles") or {}
    text = ""
    if quality:
        rows = []
        for node, q in sorted(quality.items()):
            top = sorted(q["excluded"].items(), key=lambda kv: -kv[1])[:3]
            rows.append(
                [
                    node,
                    str(q["total"]),
                    str(q["kept"]),
                    str(q["total"] - q["kept"]),
                    "; ".join(f"{r} ({n})" for r, n in top) or "-",
                ]
            )
        text += "\n## Data quality (counts reported by each node)\n\n"
        text += "Each node harmonises its own records to the canonical schema and excludes what fails the quality rules;\n"
        text += "only these counts leave it.\n\n" + _table(["node", "read", "kept", "excluded", "main reasons"], rows) + "\n"
    if quantiles:
        rows = [[c, f"{v['p25']:.4g}", f"{v['p50']:.4g}", f"{v['p75']:.4g}"] for c, v in sorted(quantiles.items())]
        how = results.get("statistics") or "per node"
        text += (
            "\n## Federated statistics\n\nQuartiles of the harmonised training records over all nodes, from histograms on the\n"
        )
        text += (
            f"schema's fixed edges ({how}; no record left any node).\n\n"
            + _table(["field", "25 %", "median", "75 %"], rows)
            + "\n"
        )
    return text


def _harmonisation_section(results: dict[str, Any], started: list[dict[str, Any]]) -> str:
    naive = next((t for t in started if "naive" in t["name"]), None)
    harmonised = next((t for t in started if t["kind"] == "federated" and "naive" not in t["name"]), None)
    if naive is None or harmonised is None:
        return ""
    metric = results["metric"]
    rows = [
        [n, _fmt(naive["per_node"].get(n, {}).get(metric)), _fmt(harmonised["per_node"].get(n, {}).get(metric))]
        for n in results["nodes"]
    ]
    rows.append(["overall", _fmt(naive["overall"][metric]), _fmt(harmonised["overall"][metric])])
    return (
        "\n## What harmonisation buys\n\nThe same federated training on the same records, read naively (columns matched by\n"
        "position, no unit conversion, local codes as written) against harmonised on each node.\n\n"
        + _table(["node", f"naive {metric.upper()}", f"harmonised {metric.upper()}"], rows)
        + "\n"
    )


def _privacy_label(top: dict[str, Any]) -> str:
    p = top["privacy"]
    epsilon = f", epsilon {p['epsilon']:g}" if p.get("epsilon") is not None else ""
    if p.get("record"):
        return f"{top['name']}: record-level DP-SGD on every node, clip {p['clip']:g}{epsilon} per node"
    kind = (
        "central DP by the coordinator (DP-SGD on the pool)" if p.get("central") else "client-level DP, noise added on the nodes"
    )
    return f"{top['name']}: {kind}, noise multiplier {p['noise_multiplier']:.3g}, clip {p['clip']:g}{epsilon}"


def render(results: dict[str, Any], run_dir: Path) -> Path:
    metric, nodes = results["metric"], results["nodes"]
    images = {
        "metric": plots.metric_per_node(results, run_dir / "metric_per_node.png"),
        "curves": plots.learning_curves(results, run_dir / "learning_curves.png"),
        "gains": plots.gains(results, run_dir / "gain_vs_local_only.png"),
        "moved": plots.data_moved(results, run_dir / "data_moved.png"),
    }
    started = [t for t in results["topologies"] if t["started"]]
    header = summary_header(metric, f"overall {metric.upper()}")
    per_node_rows = [[n, *(_fmt(t["per_node"].get(n, {}).get(metric)) for t in started)] for n in nodes]
    gain_rows = [[n, *(_fmt(g.get(n), 3) for g in results["gain_vs_local_only"].values())] for n in nodes]
    moved_rows = [
        [n, *(f"{t['raw_records_out'].get(n, 0)} rows / {t['bytes_out'].get(n, 0) / 1e3:.0f} kB" for t in started)] for n in nodes
    ]
    refusals = [
        f"- **{t['name']}**, {node}: {'; '.join(reasons)}"
        for t in results["topologies"]
        for node, reasons in t["refusals"].items()
    ]
    refusals += [f"- statistics, {node}: {'; '.join(r)}" for node, r in results["scaling_refusals"].items()]
    refusals += own_results_note(results["topologies"])
    failures = [
        f"- {t['name']}, round {f['round']}, {f['node']} ({f['rpc']}): {f['error']}"
        for t in results["topologies"]
        for f in t["failures"]
    ]
    failures += [f"- {node} unreachable: {why}" for node, why in results["unreachable"].items()]
    secure = "; ".join(secure_summary(t) for t in started if t["kind"] == "federated") or "n/a"
    text = f"""# {results["experiment"]}: federated vs central-pool vs local-only

Metric: **{metric.upper()}** on each node's own held-out test split, evaluated on the node
(only sums leave it). Every topology uses the same model, splits, seeds, global feature
scaling (from federated statistics) and at most the same training budget (rounds x local
epochs); each reports its best round on the validation rows every node holds out of its
training rows ({_chosen(started)}).

## Summary

{_table(header, summary_rows(results))}

{chr(10).join(f"- {n}" for n in summary_notes(results))}

Secure aggregation: {secure}.

![metric per node]({images["metric"].name})

## Per node ({metric.upper()})

{_table(["node", *(t["name"] for t in started)], per_node_rows)}

## Gain against local-only

{_table(["node", *results["gain_vs_local_only"]], gain_rows)}

![gains]({images["gains"].name})

## Learning curves

![curves]({images["curves"].name})

## Data that left each node

Raw records are harmonised rows exported for the central pool; bytes count everything a
node sent to the coordinator (model updates, metric sums, statistics, exported rows).

{_table(["node", *(t["name"] for t in started)], moved_rows)}

![data moved]({images["moved"].name})

## Refusals

{chr(10).join(refusals) or "None: every node accepted every request."}

## Failures

{chr(10).join(failures) or "None."}
"""
    text += _choices_section(started)
    text += "\n" + TRUST_NOTE
    text += _quality_section(results) + _harmonisation_section(results, started)
    spent = results.get("privacy_spent") or {}
    if spent:
        rows = [[n, f"{v['epsilon_spent']:.3g}", f"{v['epsilon_budget']:g}"] for n, v in sorted(spent.items())]
        text += "\n## Privacy spent\n\n" + _table(["node", "epsilon spent", "budget"], rows) + "\n"
        text += (
            "\nEach node's own ledger (Opacus RDP accounting of every release to this coordinator under the rule that"
            " granted it, whatever purposes were named).\n"
        )
    dp_runs = [t for t in started if t.get("privacy")]
    if dp_runs:
        text += "\nDifferential privacy per run: " + "; ".join(_privacy_label(t) for t in dp_runs) + ".\n"
    path = run_dir / "report.md"
    path.write_text(text)
    return path
