"""A node's gRPC server: mutual TLS always, the standard health service, one interceptor.

There is no insecure fallback: a server without certificates does not start.
The interceptor bounds what a flood can hold (`limits.ServerLimits`): calls in
flight per caller and in total stay below the worker count, every call has a
deadline and an idle timeout, and health checks run on a small pool of their
own, so a node that is busy, or flooded by a certificate holder, still answers them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from typing import Protocol, runtime_checkable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from federation.errors import ConfigError, UnknownPeer
from federation.proto.v1 import node_pb2_grpc
from federation.transport.interceptors import ErrorMappingInterceptor
from federation.transport.limits import ServerLimits
from federation.transport.tls import Identity

SERVICE_NAME = "federation.proto.v1.NodeService"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
MAX_WORKERS = ServerLimits().workers
MAX_MESSAGE_BYTES = 4 << 20  # gRPC's default, stated: a chunk is 1 MiB, no request needs more


@runtime_checkable
class Admitting(Protocol):
    """A servicer that audits the calls the interceptor refuses, and names the callers its policy serves."""

    def audit_refusal(self, caller: str, rpc: str, reason: str) -> None: ...

    def is_named(self, caller: str) -> bool: ...

    def audit_receipt(self) -> str | None: ...


def create_server(
    servicer: node_pb2_grpc.NodeServiceServicer, identity: Identity, address: str, *, limits: ServerLimits | None = None
) -> tuple[grpc.Server, int]:
    """Build and bind a server; returns it unstarted with the bound port.

    Binding port 0 picks a free port, which tests and the demo use.
    """
    limits = limits or ServerLimits()
    ca, cert, key = identity.read()
    credentials = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)
    health_pool = futures.ThreadPoolExecutor(max_workers=limits.health_workers, thread_name_prefix="health")
    admitting = servicer if isinstance(servicer, Admitting) else None
    interceptor = ErrorMappingInterceptor(
        limits,
        audit=admitting.audit_refusal if admitting is not None else None,
        named=admitting.is_named if admitting is not None else None,
        receipt=admitting.audit_receipt if admitting is not None else None,
        light={HEALTH_CHECK: health_pool},  # gRPC runs a behaviour with `experimental_thread_pool` on that pool
        deadlines={HEALTH_WATCH: limits.idle_timeout},  # a watcher reconnects; it holds a worker no longer than an idle call
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="node"),
        interceptors=[interceptor],
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            # Coordinators ping every 30 s to notice a dead node; accept that instead of GOAWAY.
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.max_ping_strikes", 0),
        ],
    )
    node_pb2_grpc.add_NodeServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    health_servicer = health.HealthServicer()
    health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        port = server.add_secure_port(address, credentials)
    except RuntimeError as error:
        raise ConfigError(address, [f"cannot listen on {address}: {error} (is the port already in use?)"]) from error
    if port == 0:
        raise ConfigError(address, [f"cannot listen on {address} (is the port already in use?)"])
    return server, port


def caller_identity(context: grpc.ServicerContext, *, refusal: Callable[[bytes], str | None] | None = None) -> str:
    """The common name of the caller's verified client certificate.

    `refusal` sees the certificate (PEM) and names why it must be refused
    (revoked), or returns None; gRPC has already checked it chains to the CA.
    """
    auth = context.auth_context()
    names = auth.get("x509_common_name") or []
    if len(names) != 1:
        raise UnknownPeer("the caller presented no certificate with a single common name")
    if refusal is not None:
        pems = auth.get("x509_pem_cert") or []
        why = refusal(pems[0]) if len(pems) == 1 else "the caller's certificate is missing"
        if why is not None:
            raise UnknownPeer(f"caller refused: {why}")
    name = names[0].decode() if isinstance(names[0], bytes) else str(names[0])
    if not name:  # gRPC reports a certificate without a common name as an empty one
        raise UnknownPeer("the caller presented no certificate with a single common name")
    return name
