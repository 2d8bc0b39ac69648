"""What-if sweeps for policy analysts: every combination of varied settings, compared.

`--vary KEY=V1,V2,...` addresses the experiment (`task.*`, `privacy.*`,
`secure_aggregation.*`, `federated.*`) or the nodes' policies
(`policies.<node>.<rule field>`, `*` for every node; applied to every rule).
Every combination runs the full comparison. Node processes are reused across
combinations that share their policies; a combination that changes policies
gets fresh node processes with its own policy files and state, so each
what-if starts from an unspent privacy budget. Each finished combination is
written at once, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import difflib
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from federation.config import read_toml, validate
from federation.errors import ConfigError, FederationError
from federation.experiments.compare import ProgressFactory, compare
from federation.experiments.config import Experiment, ExperimentFile, PrivacySection, TaskSection
from federation.experiments.launcher import NodeProcess, exit_on_signals, spread, start_nodes, stop_nodes
from federation.node.manifest import load_manifest
from federation.policy.model import Policy

EXPERIMENT_SECTIONS = ("task", "privacy", "secure_aggregation", "federated")
RULE_FIELDS = ("release", "min_cohort", "max_rounds", "models", "expires", "dp.epsilon", "dp.delta", "dp.clip", "dp.level")
DEFAULT_DP = {"delta": 1e-5, "clip": 1.0}


@dataclass(frozen=True)
class Variation:
    key: str
    values: tuple[Any, ...]


def valid_keys(experiment: Experiment) -> list[str]:
    keys = [f"task.{name}" for name in TaskSection.model_fields]
    keys += [f"privacy.{name}" for name in PrivacySection.model_fields]
    keys += ["secure_aggregation.mode", "secure_aggregation.clip", "secure_aggregation.threshold", "federated.proximal_mu"]
    nodes = ["*", *(node_id for node_id, _, _ in experiment.nodes)]
    keys += [f"policies.{node}.{field}" for node in nodes for field in RULE_FIELDS]
    return keys


def _value(text: str) -> Any:
    """A value as TOML would read it: numbers, booleans, inf, lists in brackets, else a string."""
    text = text.strip()
    if text.lower() in ("inf", "+inf", "infinity"):
        return float("inf")
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_vary(texts: Sequence[str], experiment: Experiment) -> list[Variation]:
    """Parse every `--vary`, reporting unknown keys with the closest valid key, all at once."""
    problems, variations = [], []
    keys = valid_keys(experiment)
    for text in texts:
        key, sep, values = text.partition("=")
        key = key.strip()
        if not sep or not values.strip():
            problems.append(f"--vary {text!r}: expected KEY=V1,V2,...")
            continue
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else "; keys look like task.rounds, privacy.epsilon, policies.*.dp.epsilon"
            )
            problems.append(f"--vary {key!r} is not a key of this experiment{hint}")
            continue
        variations.append(Variation(key, tuple(_value(v) for v in values.split(","))))
    if problems:
        raise ConfigError("--vary", problems)
    for combination in combinations(variations):  # values of the wrong type fail here, before anything runs
        experiment_for(experiment, combination)
        for node_id, _, _ in experiment.nodes:
            policy_for(experiment, node_id, combination)
    return variations


def combinations(variations: Sequence[Variation]) -> list[dict[str, Any]]:
    return [
        dict(zip([v.key for v in variations], values, strict=True))
        for values in itertools.product(*(v.values for v in variations))
    ]


def experiment_for(base: Experiment, combination: dict[str, Any]) -> Experiment:
    """The experiment with this combination's experiment-level values, validated."""
    data = read_toml(base.path)
    for key, value in combination.items():
        section, _, name = key.partition(".")
        if section in EXPERIMENT_SECTIONS:
            data.setdefault(section, {})[name] = value
    return Experiment(base.path, validate(ExperimentFile, data, source=f"{base.path} with {_label(combination)}"))


def _policy_path(experiment: Experiment, node_id: str) -> Path:
    manifest = next(m for n, _, m in experiment.nodes if n == node_id)
    if manifest is None:
        raise ConfigError(str(experiment.path), [f"node {node_id!r} has no manifest, so its policy cannot be varied"])
    return load_manifest(manifest).policy_path


def policy_for(experiment: Experiment, node_id: str, combination: dict[str, Any]) -> dict[str, Any] | None:
    """The node's policy with this combination's values on every rule, or None if nothing changes."""
    changes = {
        k.split(".", 2)[2]: v for k, v in combination.items() if k.startswith("policies.") and k.split(".")[1] in ("*", node_id)
    }
    if not changes:
        return None
    data = read_toml(_policy_path(experiment, node_id))
    for rule in data.get("rule", []):
        for field, value in changes.items():
            if field == "dp.epsilon" and value == float("inf"):
                rule.pop("dp", None)  # no differential privacy at all
            elif field.startswith("dp."):
                rule.setdefault("dp", dict(DEFAULT_DP))[field[3:]] = value
                rule["dp"].setdefault("epsilon", 1.0)
            else:
                rule[field] = value
    validate(Policy, data, source=f"policy of {node_id} with {_label(combination)}")
    return data


def _label(combination: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in combination.items()) or "the base settings"


@dataclass
class SweepPoint:
    index: int
    combination: dict[str, Any]
    results: dict[str, Any] | None
    error: str = ""


def run_sweep(
    experiment: Experiment,
    variations: Sequence[Variation],
    out_dir: Path,
    *,
    progress: ProgressFactory | None = None,
    on_point: Callable[[SweepPoint], None] | None = None,
    startup_timeout: float | None = None,
) -> list[SweepPoint]:
    """Run every combination; finished ones found in `out_dir` are reused (resume).

    SIGTERM or SIGHUP end the sweep through its `finally`, which stops the
    node processes; the finished points stay on disk for the resume.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    manifests = {node_id: manifest for node_id, _, manifest in experiment.nodes if manifest is not None}
    if len(manifests) != len(experiment.nodes):
        raise ConfigError(str(experiment.path), ["a sweep starts the nodes itself: every node needs a manifest"])
    points: list[SweepPoint] = []
    shared: list[NodeProcess] | None = None
    with exit_on_signals():
        try:
            for index, combination in enumerate(combinations(variations)):
                point_dir = out_dir / f"point-{index:03d}"
                finished = finished_point(point_dir, index, combination)
                if finished is not None:
                    points.append(finished)
                    continue
                current = experiment_for(experiment, combination)
                policies = {node_id: policy_for(experiment, node_id, combination) for node_id in manifests}
                varied_policies = any(p is not None for p in policies.values())
                nodes: list[NodeProcess]
                if varied_policies:
                    nodes = _start_with_policies(manifests, policies, point_dir, experiment, startup_timeout)
                else:
                    if shared is None:
                        shared = start_nodes(
                            manifests,
                            out_dir / "nodes",
                            pki_dir=experiment.pki_dir,
                            timeout=startup_timeout,
                            per_process=spread(len(manifests)),
                        )
                    nodes = shared
                point = SweepPoint(index, combination, None)
                try:
                    comparison = compare(current, {n.node_id: n.address for n in nodes}, progress=progress, output_dir=point_dir)
                    point.results = comparison.to_json()
                except FederationError as error:
                    point.error = error.public  # recorded, and the sweep goes on
                finally:
                    if varied_policies:
                        stop_nodes(nodes)
                record_point(point_dir, point)
                points.append(point)
                if on_point is not None:
                    on_point(point)
        finally:
            if shared is not None:
                stop_nodes(shared)
    return points


def _start_with_policies(
    manifests: dict[str, Path],
    policies: dict[str, dict[str, Any] | None],
    point_dir: Path,
    experiment: Experiment,
    startup_timeout: float | None,
) -> list[NodeProcess]:
    """Fresh node processes, each with its (possibly varied) policy file and its own state."""
    return start_nodes(
        manifests,
        point_dir / "nodes",
        pki_dir=experiment.pki_dir,
        policies=write_policies(experiment, policies, point_dir),
        state_root=point_dir / "state",
        timeout=startup_timeout,
        per_process=spread(len(manifests)),
    )


def write_policies(experiment: Experiment, policies: dict[str, dict[str, Any] | None], point_dir: Path) -> dict[str, Path]:
    """Each node's policy file for one point: the varied one, or a copy of its own."""
    files = {}
    for node_id, data in policies.items():
        path = point_dir / "policies" / f"{node_id}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tomli_w.dumps(data if data is not None else read_toml(_policy_path(experiment, node_id))))
        files[node_id] = path
    return files


def finished_point(point_dir: Path, index: int, combination: dict[str, Any]) -> SweepPoint | None:
    """The point as an earlier run of the sweep finished it, if it did (resume)."""
    done = point_dir / "point.json"
    if not done.is_file():
        return None
    saved = json.loads(done.read_text())
    if saved["combination"] != _jsonable(combination):
        return None
    return SweepPoint(index, combination, saved.get("results"), saved.get("error", ""))


def record_point(point_dir: Path, point: SweepPoint) -> None:
    """Write a finished point at once, so an interrupted sweep resumes after it."""
    point_dir.mkdir(parents=True, exist_ok=True)
    payload = {"combination": _jsonable(point.combination), "results": point.results, "error": point.error}
    (point_dir / "point.json").write_text(json.dumps(payload, indent=1))


def _jsonable(combination: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps({k: (str(v) if v == float("inf") else v) for k, v in combination.items()}))
    return result
