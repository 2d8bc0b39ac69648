"""What Flower's engines need to know to play an experiment's nodes: the plan file.

The plan lists every virtual node (its id, manifest, and optionally a
policy, state directory and PKI directory, as `federation node serve` takes
them) and the coordinator whose calls the nodes serve. It is JSON, written
into the run directory, and read by the ClientApp in whichever process
Flower runs it, so every worker loads the same nodes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from federation.errors import ConfigError

PLAN_NAME = "flower-plan.json"


@dataclass(frozen=True)
class VirtualNode:
    node_id: str
    manifest: str
    pki_dir: str
    policy: str | None = None
    state_dir: str | None = None


@dataclass(frozen=True)
class Plan:
    coordinator: str
    pki_dir: str
    nodes: tuple[VirtualNode, ...]

    def node(self, node_id: str) -> VirtualNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise ConfigError(node_id, [f"the plan has no node {node_id!r}"])

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"coordinator": self.coordinator, "pki_dir": self.pki_dir, "nodes": [asdict(n) for n in self.nodes]}
        path.write_text(json.dumps(payload, indent=1))
        return path


def read_plan(path: Path) -> Plan:
    try:
        raw = json.loads(path.read_text())
        nodes = tuple(VirtualNode(**item) for item in raw["nodes"])
        return Plan(str(raw["coordinator"]), str(raw["pki_dir"]), nodes)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ConfigError(str(path), [f"not a plan of virtual nodes: {error}"]) from None


def plan_for(
    nodes: list[tuple[str, str | None, Path | None]],
    pki_dir: Path,
    coordinator: str,
    *,
    where: str,
    policies: dict[str, Path] | None = None,
    state_root: Path | None = None,
) -> Plan:
    """The plan of an experiment's nodes (each needs a manifest); `state_root` gives each a state directory of its own."""
    missing = [node_id for node_id, _, manifest in nodes if manifest is None]
    if missing:
        raise ConfigError(
            where, [f"node {n!r} has no manifest; Flower's engines start every node from its manifest" for n in missing]
        )
    return Plan(
        coordinator,
        str(pki_dir),
        tuple(
            VirtualNode(
                node_id,
                str(manifest),
                str(pki_dir),
                policy=str((policies or {})[node_id]) if node_id in (policies or {}) else None,
                state_dir=str(state_root / node_id) if state_root is not None else None,
            )
            for node_id, _, manifest in nodes
            if manifest is not None
        ),
    )
