"""Running a node process: load everything, bind, serve until told to stop."""

from __future__ import annotations

import json
import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import grpc

from federation.errors import ConfigError
from federation.node.handlers import NodeHandlers
from federation.node.manifest import load_manifest
from federation.node.runtime import NodeRuntime
from federation.node.servicer import NodeServicer
from federation.node.state_lock import hold_state_dir
from federation.transport.server import create_server
from federation.transport.tls import CRL_NAME, Identity
from federation.trust.certificates import Credentials, PeerTrust, load_pins, load_recipient_pins

log = logging.getLogger(__name__)


def start_node(
    manifest_path: Path,
    *,
    listen: str = "127.0.0.1:0",
    pki_dir: Path | None = None,
    policy_path: Path | None = None,
    state_dir: Path | None = None,
) -> tuple[grpc.Server, int, NodeRuntime]:
    """Load a node and start serving; returns (server, port, runtime).

    The state directory is locked first, before the slow data load and before
    the audit log and ledger open, so a second node on it fails at once; the
    lock is held until this process exits.
    """
    hold_state_dir(state_dir if state_dir is not None else load_manifest(manifest_path).state_dir)
    runtime = NodeRuntime.load(manifest_path, policy_path=policy_path, state_dir=state_dir)
    identity = Identity.in_directory(pki_dir or runtime.manifest.tls_dir, runtime.node_id)
    credentials, peers = cohort_identity(identity, runtime.manifest.pins_path)
    unpinned = sorted(runtime.policy.recipients - set(peers.recipients) - {"*"}) if peers.pins is not None else []
    if unpinned:
        log.warning(
            "%s: recipients %s are not pinned; a holder of the CA key could call in their name", runtime.node_id, unpinned
        )
    handlers = NodeHandlers(runtime, credentials=credentials, peers=peers)
    server, port = create_server(NodeServicer(handlers), identity, listen)
    server.start()
    log.info("node %s serving on port %d", runtime.node_id, port)
    return server, port, runtime


def cohort_identity(identity: Identity, pins_path: Path | None) -> tuple[Credentials, PeerTrust]:
    """This node's signing credentials and whom it accepts: pinned certificates, or any of the CA's."""
    ca, cert, key = identity.read()
    pins = None
    if pins_path is not None:
        if not pins_path.is_file():
            raise ConfigError(
                str(pins_path),
                ["the pin file of accepted parties is missing (create it with `federation pki pin NAME... --dir PKI`)"],
            )
        pins, recipients = load_pins(pins_path), load_recipient_pins(pins_path)
    else:
        recipients = {}
    trust = PeerTrust(ca, pins=pins, recipients=recipients, crl_path=identity.ca_cert.parent / CRL_NAME)
    return Credentials.from_pem(cert, key), trust


def host_nodes(spec: Path) -> list[grpc.Server]:
    """Start every node a host spec lists, in this process; each writes its address file once it serves.

    What keeps them separate parties: each node loads its own manifest,
    policy, data and certificate, locks its own state directory (two nodes of
    one host on one directory are refused, as two processes are), keeps its
    own audit log, ledger and run registry, and binds its own port with its
    own server and limits. Nothing mutable is shared between their handlers;
    the process-wide random state torch initialises models from is taken
    under a lock (`models.registry`). A node that fails to load stops the host.
    """
    try:
        launches = [NodeSpec(**item) for item in json.loads(spec.read_text())]
    except (OSError, ValueError, TypeError) as error:
        raise ConfigError(str(spec), [f"not a host spec: {error}"]) from None
    owners: dict[Path, str] = {}
    for launch in launches:  # the state lock is re-entrant within a process, so one host checks its own nodes
        state = (_optional(launch.state_dir) or load_manifest(Path(launch.manifest)).state_dir).resolve()
        if state in owners:
            problem = f"nodes {owners[state]!r} and {launch.node_id!r} would share state directory {state}"
            raise ConfigError(str(spec), [f"{problem}; one node per state directory keeps each audit chain and ledger whole"])
        owners[state] = launch.node_id
    servers = []
    for launch in launches:
        server, port, runtime = start_node(
            Path(launch.manifest),
            pki_dir=_optional(launch.pki_dir),
            policy_path=_optional(launch.policy),
            state_dir=_optional(launch.state_dir),
        )
        servers.append(server)
        address = Path(launch.address_file)
        address.with_suffix(".tmp").write_text(f"127.0.0.1:{port}")
        address.with_suffix(".tmp").replace(address)
        log.info(
            "hosting node %s on port %d (%d train / %d test records)",
            runtime.node_id,
            port,
            len(runtime.train),
            len(runtime.test),
        )
    return servers


def _optional(value: str | None) -> Path | None:
    return Path(value) if value else None


@dataclass(frozen=True)
class NodeSpec:
    """One node of a host spec (the launcher's NodeLaunch, as JSON)."""

    node_id: str
    manifest: str
    address_file: str
    pki_dir: str | None = None
    policy: str | None = None
    state_dir: str | None = None


def serve_forever(*servers: grpc.Server, grace_seconds: float = 2.0) -> None:
    """Block until SIGINT or SIGTERM, then stop gracefully."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    stop.wait()
    for event in [server.stop(grace_seconds) for server in servers]:
        event.wait()
