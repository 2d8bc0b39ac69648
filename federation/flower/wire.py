"""A NodeService call as a Flower message, and its reply.

On Flower's engines the coordinator's calls reach a node as Flower
`Message`s instead of gRPC calls on the node's own port. The body is the
same: the request messages of the wire contract (`node.proto`), serialised,
in a `ConfigRecord`; the reply carries the reply messages, or the gRPC status,
details and trailing metadata that our interceptor would have sent, so the
coordinator rebuilds exactly the error a gRPC node would have raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flwr.app import ConfigRecord, RecordDict

from federation.errors import InvalidRequest
from federation.proto.v1 import node_pb2 as pb

SERVICE = "federation.proto.v1.NodeService"
MESSAGE_TYPE = "query"  # Flower routes "query" messages to a ClientApp's query function
RECORD = "rpc"
WHOAMI = "whoami"  # not a NodeService method: asks a virtual node which party it is


@dataclass(frozen=True)
class Method:
    name: str
    client_streaming: bool
    server_streaming: bool
    request: type[Any]
    reply: type[Any]


def _methods() -> dict[str, Method]:
    service = pb.DESCRIPTOR.services_by_name["NodeService"]
    return {
        m.name: Method(
            m.name, m.client_streaming, m.server_streaming, getattr(pb, m.input_type.name), getattr(pb, m.output_type.name)
        )
        for m in service.methods
    }


METHODS = _methods()


def method_name(path: str) -> str:
    """`Fit` from gRPC's `/federation.proto.v1.NodeService/Fit`."""
    service, _, name = path.lstrip("/").rpartition("/")
    if service != SERVICE or name not in METHODS:
        raise InvalidRequest(f"{path[:80]!r} is not a NodeService method")
    return name


def call_content(method: str, requests: list[bytes]) -> RecordDict:
    return RecordDict({RECORD: ConfigRecord({"method": method, "requests": requests})})


def read_call(content: RecordDict) -> tuple[str, list[bytes]]:
    """The method and serialised requests of a call; InvalidRequest if the message is not one."""
    record = content.get(RECORD)
    if not isinstance(record, ConfigRecord):
        raise InvalidRequest("a Flower message without an rpc record")
    method, requests = record.get("method"), record.get("requests", [])
    if not isinstance(method, str) or not isinstance(requests, list) or not all(isinstance(r, bytes) for r in requests):
        raise InvalidRequest("an rpc record needs a method name and a list of serialised requests")
    if method != WHOAMI and method not in METHODS:
        raise InvalidRequest(f"{method[:80]!r} is not a NodeService method")
    return method, [r for r in requests if isinstance(r, bytes)]


@dataclass(frozen=True)
class Reply:
    """What a node answered: reply messages, or a status other than OK with its details and metadata."""

    replies: list[bytes] = field(default_factory=list)
    status: str = "OK"  # a grpc.StatusCode name
    details: str = ""
    metadata: tuple[tuple[str, str], ...] = ()

    def content(self) -> RecordDict:
        keys = [k for k, _ in self.metadata]
        values = [v for _, v in self.metadata]
        record = ConfigRecord(
            {"replies": list(self.replies), "status": self.status, "details": self.details, "keys": keys, "values": values}
        )
        return RecordDict({RECORD: record})

    @classmethod
    def read(cls, content: RecordDict) -> Reply:
        record = content.get(RECORD)
        if not isinstance(record, ConfigRecord):
            raise InvalidRequest("a Flower reply without an rpc record")
        replies, keys, values = record.get("replies", []), record.get("keys", []), record.get("values", [])
        status, details = record.get("status", "UNKNOWN"), record.get("details", "")
        if not (isinstance(replies, list) and isinstance(keys, list) and isinstance(values, list)) or len(keys) != len(values):
            raise InvalidRequest("a Flower reply whose rpc record does not parse")
        return cls(
            [bytes(r) for r in replies if isinstance(r, bytes)],
            str(status),
            str(details),
            tuple(zip(map(str, keys), map(str, values), strict=True)),
        )
