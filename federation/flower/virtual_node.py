"""A node on Flower's engines: each Flower message is one NodeService call, served by the node's own code.

The ClientApp runs the same servicer, handlers, policy decisions, ledger,
audit log and secure-aggregation client as `federation node serve`; only the
way the call arrives differs. What keeps each virtual node a party of its
own: its own manifest, data, policy, certificate and state directory, so its
own audit log, ledger and run registry, all real files.

Flower may hand each message of one node to a different worker process, so
nothing of a node lives only in one worker's memory:
- every message takes the node's state-directory lock for as long as it is
  served, then opens the audit log, ledger and run registry from their files;
- the secure-aggregation rounds a node has in progress (its keys and shares)
  are carried between messages in the node's Flower context (`context.state`,
  the engine's memory of that node, where Flower's own SecAgg+ keeps its
  state too);
- only what never changes is cached per worker: the loaded data, schema and
  policy, and the node's certificate and the parties it accepts.

Whom this protects against: on these engines the node cannot authenticate
its caller: the engine delivers messages and the node serves the coordinator
its plan names. Every other check (policy, budget, cohort certificates,
phase order) is the node's own. Where the coordinator is the party to fear,
run the nodes as `federation node serve`, over mutual TLS.
"""

from __future__ import annotations

import logging
import pickle
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord, Context, Message, RecordDict
from google.protobuf.message import DecodeError

from federation.errors import ConfigError, FederationError, InvalidRequest
from federation.flower.plan import Plan, VirtualNode, read_plan
from federation.flower.wire import METHODS, WHOAMI, Reply, read_call
from federation.node.handlers import NodeHandlers
from federation.node.runtime import NodeRuntime
from federation.node.serve import cohort_identity
from federation.node.servicer import NodeServicer
from federation.node.state import SecureRound
from federation.node.state_lock import StateLock
from federation.transport.interceptors import abort_call
from federation.transport.receipts import receipt_metadata
from federation.transport.tls import CA_NAME, Identity
from federation.trust.certificates import Credentials, PeerTrust

log = logging.getLogger(__name__)
STATE_RECORD = "federation-node"
LOCK_SECONDS = 600.0  # how long a message waits for another message of the same node


class _Aborted(Exception):
    def __init__(self, status: str, details: str) -> None:
        super().__init__(details)
        self.status, self.details = status, details


class VirtualContext:
    """The part of `grpc.ServicerContext` the servicer uses: the caller, trailing metadata, abort."""

    def __init__(self, caller: str, caller_pem: bytes) -> None:
        self._auth = {"x509_common_name": [caller.encode()], "x509_pem_cert": [caller_pem]}
        self.metadata: tuple[tuple[str, str], ...] = ()

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = tuple(metadata)

    def abort(self, code: Any, details: str) -> None:
        raise _Aborted(code.name, details)


@dataclass
class _Loaded:
    runtime: NodeRuntime
    credentials: Credentials
    peers: PeerTrust
    caller: str
    caller_pem: bytes


_plans: dict[str, Plan] = {}
_loaded: dict[VirtualNode, _Loaded] = {}
_cache_lock = threading.Lock()


def plan_at(path: str) -> Plan:
    with _cache_lock:
        if path not in _plans:
            _plans[path] = read_plan(Path(path))
        return _plans[path]


def _load(plan: Plan, node: VirtualNode) -> _Loaded:
    """The node's read-only parts, loaded once per worker."""
    with _cache_lock:
        loaded = _loaded.get(node)
    if loaded is not None:
        return loaded
    runtime = NodeRuntime.load(
        Path(node.manifest),
        policy_path=Path(node.policy) if node.policy else None,
        state_dir=Path(node.state_dir) if node.state_dir else None,
    )
    credentials, peers = cohort_identity(Identity.in_directory(Path(node.pki_dir), node.node_id), runtime.manifest.pins_path)
    caller_cert = Path(plan.pki_dir) / f"{plan.coordinator}.crt"
    if not caller_cert.is_file() or not (Path(plan.pki_dir) / f"{CA_NAME}.crt").is_file():
        raise ConfigError(plan.pki_dir, [f"missing the certificate of coordinator {plan.coordinator!r} or of the CA"])
    loaded = _Loaded(runtime, credentials, peers, plan.coordinator, caller_cert.read_bytes())
    with _cache_lock:
        _loaded[node] = loaded
    return loaded


def supernode_plan(node_config: dict[str, Any]) -> Plan:
    """A SuperNode's own plan, from its `--node-config "manifest='PATH' coordinator='NAME'"` (the Deployment Engine).

    Each department configures its SuperNode with its own manifest, so its node
    loads its own data, policy, certificate and state; nobody hands it a plan.
    """
    from federation.node.manifest import load_manifest

    manifest, coordinator = node_config.get("manifest"), node_config.get("coordinator")
    if not isinstance(manifest, str) or not isinstance(coordinator, str):
        raise ConfigError("node config", ["a SuperNode needs --node-config \"manifest='PATH' coordinator='NAME'\""])
    key = f"{manifest}\0{coordinator}"
    with _cache_lock:
        if key in _plans:
            return _plans[key]
    loaded = load_manifest(Path(manifest))
    own = VirtualNode(loaded.node_id, str(Path(manifest).resolve()), str(loaded.tls_dir))
    plan = Plan(coordinator, str(loaded.tls_dir), (own,))
    with _cache_lock:
        _plans[key] = plan
    return plan


def node_of(plan: Plan, context: Context) -> VirtualNode:
    """This ClientApp's node: `node` in its node config (a SuperNode's --node-config), or its partition id's place in the plan."""
    named = context.node_config.get("node")
    if isinstance(named, str):
        return plan.node(named)
    partition = context.node_config.get("partition-id")
    if isinstance(partition, int) and 0 <= partition < len(plan.nodes):
        return plan.nodes[partition]
    if len(plan.nodes) == 1:  # a SuperNode's own plan
        return plan.nodes[0]
    raise ConfigError("node config", [f"neither a node name nor a partition id within the plan's {len(plan.nodes)} nodes"])


def handle(plan: Plan, message: Message, context: Context) -> Message:
    """Serve one message; a failure of any kind becomes a reply with its status, never an exception."""
    try:
        node = node_of(plan, context)
        method, requests = read_call(message.content)
        if method == WHOAMI:
            reply = Reply([str(plan.nodes.index(node)).encode(), node.node_id.encode()])
        else:
            reply = serve(plan, node, method, requests, context.state)
    except FederationError as error:
        reply = Reply(status="FAILED_PRECONDITION", details=error.public)
    return Message(reply.content(), reply_to=message)


def serve(plan: Plan, node: VirtualNode, method: str, requests: list[bytes], state: RecordDict) -> Reply:
    loaded = _load(plan, node)
    with StateLock.wait(loaded.runtime.manifest.state_dir, timeout=LOCK_SECONDS):
        handlers = NodeHandlers(loaded.runtime, credentials=loaded.credentials, peers=loaded.peers)
        _restore(handlers, state, loaded)
        try:
            return _call(NodeServicer(handlers), method, requests, VirtualContext(loaded.caller, loaded.caller_pem))
        finally:
            _keep(handlers, state)


def _call(servicer: NodeServicer, name: str, requests: list[bytes], context: VirtualContext) -> Reply:
    """One call, with the statuses and audit of `transport.interceptors`: refusals audited, receipts attached."""
    method = METHODS[name]
    try:
        try:
            messages = [method.request.FromString(r) for r in requests]
        except DecodeError as error:
            reason = f"a {name} request that does not parse: {error}"
            servicer.audit_refusal(context.auth_context()["x509_common_name"][0].decode(), name, reason)
            raise InvalidRequest(reason) from None
        if not method.client_streaming and len(messages) != 1:
            raise InvalidRequest(f"{name} takes exactly one request, not {len(messages)}")
        behaviour = getattr(servicer, name)
        argument: Any = iter(messages) if method.client_streaming else messages[0]
        result = behaviour(argument, context)
        replies = list(result) if method.server_streaming else [result]
        return Reply([r.SerializeToString() for r in replies], metadata=receipt_metadata(servicer.audit_receipt()))
    except _Aborted as aborted:
        return Reply(status=aborted.status, details=aborted.details, metadata=context.metadata)
    except Exception as error:
        try:
            abort_call(context, error, name, receipt_metadata(servicer.audit_receipt()))
        except _Aborted as aborted:
            return Reply(status=aborted.status, details=aborted.details, metadata=context.metadata)
        raise  # pragma: no cover - abort_call always raises


def _restore(handlers: NodeHandlers, state: RecordDict, loaded: _Loaded) -> None:
    record = state.get(STATE_RECORD)
    blob = record.get("secure") if isinstance(record, ConfigRecord) else None
    if not isinstance(blob, bytes) or not blob:
        return
    # The node's own rounds, which this module wrote into the engine's memory of this node (never a caller's bytes).
    rounds: dict[tuple[str, str], SecureRound] = pickle.loads(blob)  # noqa: S301
    for secure in rounds.values():
        secure.client.rebind(loaded.credentials, loaded.peers)
    handlers.runs.restore_secure_rounds(rounds)


def _keep(handlers: NodeHandlers, state: RecordDict) -> None:
    rounds = handlers.runs.open_secure_rounds()
    state[STATE_RECORD] = ConfigRecord({"secure": pickle.dumps(rounds) if rounds else b""})
