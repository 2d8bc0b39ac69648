"""Dialling a node over mutual TLS, checking it is the node we meant."""

from __future__ import annotations

import grpc

from federation.transport.tls import Identity

CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.max_receive_message_length", 16 << 20),
    ("grpc.max_send_message_length", 16 << 20),
]


def secure_channel(address: str, identity: Identity, *, expected_node: str) -> grpc.Channel:
    """Open a channel whose server certificate must name `expected_node`.

    Overriding the target name means a node cannot impersonate another one
    even when both certificates come from the same CA.
    """
    ca, cert, key = identity.read()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    options = [*CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", expected_node)]
    return grpc.secure_channel(address, credentials, options=options)
