"""Shared test helpers: a small copy of the example city with its own PKI, and live nodes.

The city is laid out in a temporary folder exactly like the repository
(`nodes/`, `policies/`, `examples/pollution_enforcement/`), so the shipped
manifests and policies are the ones under test, with generated data at a
small scale.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from federation.coordinator.client import NodeClient
from federation.coordinator.negotiate import combine_stats, negotiate
from federation.experiments.launcher import prepare_identities
from federation.node.serve import start_node
from federation.task import ModelSpec, RunContext, TaskSpec
from federation.transport.tls import Identity, ensure_identities

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "pollution_enforcement"
COORDINATOR = "city-platform"
STRANGER = "unknown-firm"
SMALL_PARTIES = ("central-district", "north-district", "hills-district")
FEATURES = (
    "cod",
    "nh3n",
    "flow",
    "ph",
    "production",
    "energy",
    "employees",
    "past_violations",
    "days_since_inspection",
    "industry",
)


@contextmanager
def serving_in_process(manifests: dict[str, Path], pki_dir: Path, coordinator: str) -> Iterator[dict[str, NodeClient]]:
    """Every manifest's node served in this process over real mTLS on 127.0.0.1, and the coordinator's client of each."""
    identity = Identity.in_directory(pki_dir, coordinator)
    servers: list[grpc.Server] = []
    clients: dict[str, NodeClient] = {}
    try:
        for name, manifest in manifests.items():
            server, port, _ = start_node(manifest, listen="127.0.0.1:0")
            servers.append(server)
            clients[name] = NodeClient(name, f"127.0.0.1:{port}", identity, timeout=60)
        yield clients
    finally:
        for client in clients.values():
            client.close()
        for server in servers:
            server.stop(0)


def load_script(path: Path, name: str):  # type: ignore[no-untyped-def]
    """An example's script (generate.py, prepare.py) as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def load_generator():  # type: ignore[no-untyped-def]
    return load_script(EXAMPLE / "generate.py", "pollution_generate")


@dataclass
class City:
    root: Path
    parties: tuple[str, ...]
    pki: Path = field(init=False)

    def __post_init__(self) -> None:
        self.pki = self.root / ".federation" / "pki"

    def manifest(self, party: str) -> Path:
        return self.root / "nodes" / f"{party}.toml"

    def policy(self, party: str) -> Path:
        return self.root / "policies" / f"{party}.toml"

    def identity(self, name: str = COORDINATOR) -> Identity:
        return Identity.in_directory(self.pki, name)


def build_city(root: Path, *, scale: float = 0.2) -> City:
    """Copy manifests, policies and schema; generate data; create certificates."""
    for folder in ("nodes", "policies"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "examples" / "pollution_enforcement").mkdir(parents=True)
    shutil.copy(EXAMPLE / "schema.toml", root / "examples" / "pollution_enforcement" / "schema.toml")
    shutil.copy(EXAMPLE / "experiment.toml", root / "examples" / "pollution_enforcement" / "experiment.toml")
    written = load_generator().generate_city(root / "examples" / "pollution_enforcement" / "data", seed=7, scale=scale)
    city = City(root, tuple(written))
    ensure_identities(city.pki, [STRANGER])
    prepare_identities(city.pki, {p: city.manifest(p) for p in city.parties}, COORDINATOR)
    return city


@dataclass
class LiveNode:
    node_id: str
    address: str
    server: grpc.Server

    def client(self, city: City, name: str = COORDINATOR, *, timeout: float = 60.0) -> NodeClient:
        return NodeClient(self.node_id, self.address, city.identity(name), timeout=timeout)


def serve(city: City, party: str) -> LiveNode:
    server, port, _ = start_node(city.manifest(party), listen="127.0.0.1:0")
    return LiveNode(party, f"127.0.0.1:{port}", server)


def small_task(model: str = "logreg", *, rounds: int = 3, **params: object) -> TaskSpec:
    return TaskSpec(
        model=ModelSpec(model, dict(params)),  # type: ignore[arg-type]
        features=FEATURES,
        target="violation",
        rounds=rounds,
        local_epochs=1,
        batch_size=32,
        learning_rate=0.01,
        seed=3,
    )


PURPOSE = "pollution-enforcement"
PARTIES = ("central-district", "north-district", "hills-district", "river-district")


def scaled_task(clients: list[NodeClient], task: TaskSpec) -> TaskSpec:
    run_id = f"stats-{uuid.uuid4().hex[:6]}"
    negotiation = negotiate(clients, RunContext(run_id, PURPOSE), task, release="stats")
    return task.with_scaling(combine_stats([c.stats(RunContext(run_id, PURPOSE), task) for c in negotiation.accepted]))


def write_experiment(city: City, parties: tuple[str, ...], *, rounds: int = 3) -> Path:
    nodes = "\n".join(f'[[node]]\nid = "{p}"\nmanifest = "nodes/{p}.toml"\n' for p in parties)
    features = ", ".join(f'"{f}"' for f in FEATURES)
    path = city.root / "experiment.toml"
    path.write_text(f"""
name = "test-city"
purpose = "pollution-enforcement"
coordinator = "{COORDINATOR}"
pki = ".federation/pki"
output = "runs"

[task]
model = "mlp"
params = {{ hidden = [16] }}
features = [{features}]
target = "violation"
rounds = {rounds}
learning_rate = 0.01
seed = 1

[federated]
strategies = ["fedavg", "fedprox"]

{nodes}
""")
    return path


def federation_cli(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the `federation` command as a user would; a command expected to fail gets a short timeout."""
    env = {**os.environ, "COLUMNS": "200"}
    if args[:2] == ("node", "serve"):
        timeout = min(timeout, 120)  # a node that should refuse to start must not serve until the suite times out
    return subprocess.run(
        [sys.executable, "-m", "federation", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )
