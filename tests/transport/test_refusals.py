"""Requests refused before a handler runs: INVALID_ARGUMENT (never INTERNAL), one short audit entry per call."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from fedkit import COORDINATOR, STRANGER, City, LiveNode, small_task

from federation.proto.v1 import node_pb2 as pb
from federation.task import RunContext
from federation.transport import serde

PARTY = "north-district"
PURPOSE = "pollution-enforcement"
NODE = "/federation.proto.v1.NodeService/"


def raw_channel(node: LiveNode, city: City, name: str = COORDINATOR) -> grpc.Channel:
    ca, cert, key = city.identity(name).read()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    return grpc.secure_channel(node.address, credentials, options=[("grpc.ssl_target_name_override", node.node_id)])


def audit_lines(city: City) -> list[str]:
    path = city.root / ".federation" / "state" / PARTY / "audit.jsonl"
    return path.read_text().splitlines() if path.is_file() else []


def refused(
    node: LiveNode, city: City, send: Callable[[grpc.Channel], object], *, name: str = COORDINATOR
) -> tuple[grpc.RpcError, list[dict[str, Any]]]:
    """Send one call that must fail; its error and the audit entries it added."""
    before = len(audit_lines(city))
    with raw_channel(node, city, name) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            send(channel)
    lines = audit_lines(city)
    return caught.value, [json.loads(line) for line in lines[before:]]


def context_pb() -> pb.RunContext:
    return serde.context_to_pb(RunContext(f"r-{uuid.uuid4().hex[:6]}", PURPOSE))


def unary(rpc: str, data: bytes) -> Callable[[grpc.Channel], object]:
    return lambda channel: channel.unary_unary(NODE + rpc)(data, timeout=10)


def stream(rpc: str, *messages: bytes) -> Callable[[grpc.Channel], object]:
    return lambda channel: list(channel.stream_stream(NODE + rpc)(iter(messages), timeout=10))


def with_task(**changes: Any) -> bytes:
    task = serde.task_to_pb(small_task())
    for name, value in changes.items():
        if isinstance(value, pb.ModelSpec):
            task.model.CopyFrom(value)
        else:
            setattr(task, name, value)
    return pb.ProposeRequest(context=context_pb(), task=task, cohort_size=3, release="update").SerializeToString()


def nan_param() -> bytes:
    task = serde.task_to_pb(small_task("mlp"))
    task.model.params.update({"hidden": [float("nan")]})
    return pb.ProposeRequest(context=context_pb(), task=task, cohort_size=3, release="update").SerializeToString()


CASES = {
    "unparseable": (unary("Propose", b"\xff\xff\xff\x00garbage"), "Propose", "could not be parsed"),
    "huge target": (unary("Propose", with_task(target="t" * 1_000_000)), "Propose", "the target is 1000000 characters"),
    "control characters": (unary("Propose", with_task(view="naive\n")), "Propose", "control or unprintable"),
    "non-finite parameter": (unary("Propose", nan_param()), "Propose", "must be finite"),
    "huge release": (
        unary(
            "Propose",
            pb.ProposeRequest(
                context=context_pb(), task=serde.task_to_pb(small_task()), release="r" * 100_000
            ).SerializeToString(),
        ),
        "Propose",
        "release",
    ),
    "too many survivors": (
        unary("ConfirmSurvivors", pb.ConfirmSurvivorsRequest(context=context_pb(), survivors=range(5000)).SerializeToString()),
        "ConfirmSurvivors",
        "5000 survivors",
    ),
    "no header": (stream("Fit", pb.FitRequest(chunk=b"1234").SerializeToString()), "Fit", "must start with its header"),
    "garbage in a stream": (stream("MaskedUpdate", b"\xff\xff\xff"), "MaskedUpdate", "could not be parsed"),
    "empty stream": (stream("Fit"), "Fit", "must start with its header"),
    "garbage health check": (
        lambda channel: channel.unary_unary("/grpc.health.v1.Health/Check")(b"\xff\xff", timeout=10),
        "Health/Check",
        "could not be parsed",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_malformed_request_is_invalid_argument_with_one_short_audit_entry(
    live_nodes: dict[str, LiveNode], city: City, case: str
) -> None:
    send, rpc, reason = CASES[case]
    error, entries = refused(live_nodes[PARTY], city, send)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert reason in (error.details() or "")
    assert len(error.details() or "") <= 1000
    assert len(entries) == 1, entries
    (entry,) = entries
    assert (entry["caller"], entry["rpc"], entry["decision"]) == (COORDINATOR, rpc, "error")
    assert reason in entry["reasons"][0] and len(entry["reasons"][0]) <= 300


def test_a_strangers_malformed_request_is_audited_under_its_certificate_name(live_nodes: dict[str, LiveNode], city: City) -> None:
    error, entries = refused(live_nodes[PARTY], city, unary("Describe", b"\x0a\x05abc"), name=STRANGER)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [(e["caller"], e["rpc"]) for e in entries] == [(STRANGER, "Describe")]


def test_a_refusal_of_the_handler_is_audited_once_not_twice(live_nodes: dict[str, LiveNode], city: City) -> None:
    """The servicer converts, the handler refuses (unknown model): the handler's entry is the only one."""
    error, entries = refused(live_nodes[PARTY], city, unary("Propose", with_task(model=pb.ModelSpec(name="transformer"))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "unknown model" in (error.details() or "")
    assert len(entries) == 1 and entries[0]["run_id"]  # the handler's entry names the run
