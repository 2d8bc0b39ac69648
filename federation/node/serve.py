"""Running a node process: load everything, bind, serve until told to stop."""

from __future__ import annotations

import logging
import signal
import threading
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


def serve_forever(server: grpc.Server, *, grace_seconds: float = 2.0) -> None:
    """Block until SIGINT or SIGTERM, then stop gracefully."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    stop.wait()
    server.stop(grace_seconds).wait()
