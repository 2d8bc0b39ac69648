"""A certificate holder that floods a node with idle calls: health, other callers and the workers survive it.

The node is served in this process with the shipped limits except a short
idle timeout, so the streams are seen to end within seconds.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from fedkit import COORDINATOR, STRANGER, City, small_task
from grpc_health.v1 import health_pb2, health_pb2_grpc

from federation.models.registry import build_model
from federation.models.training import get_arrays
from federation.node.handlers import NodeHandlers
from federation.node.runtime import NodeRuntime
from federation.node.serve import cohort_identity
from federation.node.servicer import NodeServicer
from federation.proto.v1 import node_pb2 as pb
from federation.task import RunContext
from federation.transport import serde
from federation.transport.limits import ServerLimits
from federation.transport.server import create_server
from federation.transport.streaming import tensor_header
from federation.transport.tls import Identity

PARTY = "north-district"
INSIDER = "hills-district"  # a fellow department's certificate: valid, but not a recipient of this node
OUTSIDER = "central-district"  # another one
PURPOSE = "pollution-enforcement"
N_INPUTS = 14
IDLE = 3.0
NODE = "/federation.proto.v1.NodeService/"


def serve_with_limits(city: City, limits: ServerLimits, state: Path) -> tuple[grpc.Server, str]:
    """The node as `federation node serve` builds it, with `limits` and a state folder of its own."""
    runtime = NodeRuntime.load(city.manifest(PARTY), state_dir=state)
    identity = Identity.in_directory(city.pki, PARTY)
    credentials, peers = cohort_identity(identity, runtime.manifest.pins_path)
    handlers = NodeHandlers(runtime, credentials=credentials, peers=peers)
    server, port = create_server(NodeServicer(handlers), identity, "127.0.0.1:0", limits=limits)
    server.start()
    return server, f"127.0.0.1:{port}"


def channel(city: City, address: str, name: str) -> grpc.Channel:
    ca, cert, key = city.identity(name).read()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    return grpc.secure_channel(address, credentials, options=[("grpc.ssl_target_name_override", PARTY)])


def silent(release: threading.Event, *first: bytes) -> Iterator[bytes]:
    """A request stream that sends `first` and then nothing, without ending, until released."""
    yield from first
    release.wait(60)


def health_check(ch: grpc.Channel) -> float:
    start = time.monotonic()
    reply = health_pb2_grpc.HealthStub(ch).Check(
        health_pb2.HealthCheckRequest(service="federation.proto.v1.NodeService"), timeout=5
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    return time.monotonic() - start


def describe(ch: grpc.Channel) -> pb.DescribeReply:
    request = pb.DescribeRequest(context=pb.RunContext(run_id=f"d-{uuid.uuid4().hex[:6]}", purpose=PURPOSE))
    return pb.DescribeReply.FromString(ch.unary_unary(NODE + "Describe")(request.SerializeToString(), timeout=10))


def admitted_fit_header(ch: grpc.Channel) -> bytes:
    """A Fit header for a run the node accepted, announcing exactly the task's model: it is admitted."""
    task, ctx = small_task(rounds=1), RunContext(f"flood-{uuid.uuid4().hex[:6]}", PURPOSE, 1)
    propose = pb.ProposeRequest(context=serde.context_to_pb(ctx), task=serde.task_to_pb(task), cohort_size=3, release="update")
    assert pb.ProposeReply.FromString(ch.unary_unary(NODE + "Propose")(propose.SerializeToString(), timeout=30)).accepted
    arrays = get_arrays(build_model(task.model, N_INPUTS, seed=0))
    header = pb.FitHeader(context=serde.context_to_pb(ctx), task=serde.task_to_pb(task), tensors=tensor_header(arrays))
    return pb.FitRequest(header=header).SerializeToString()


def outcome(call: grpc.Future, timeout: float) -> grpc.StatusCode:
    try:
        call.result(timeout=timeout)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def idle_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if any("sent nothing" in r for r in e["reasons"])]


def audit_entries(state: Path, *, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0) -> list[dict[str, Any]]:
    """The audit log once `until` holds: a caller hears its call end a moment before the node has audited it."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
        if until(entries) or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


@pytest.fixture()
def flooded_node(city: City, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    server, address = serve_with_limits(city, ServerLimits(idle_timeout=IDLE, health_deadline=IDLE), tmp_path / "state")
    yield address, tmp_path / "state"
    server.stop(0)


ENDED = {grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED}
METHODS = ("Fit", "Evaluate", "MaskedUpdate", "Describe")  # the last: a unary call whose request never comes


def test_idle_calls_hold_no_worker_for_long_and_starve_neither_health_nor_another_caller(
    city: City, flooded_node: tuple[str, Path]
) -> None:
    address, state = flooded_node
    release = threading.Event()
    names = (COORDINATOR, STRANGER, INSIDER, OUTSIDER)
    channels = {name: channel(city, address, name) for name in names}
    coordinator, stranger, insider, outsider = (channels[n] for n in names)

    def hold(ch: grpc.Channel, n: int, *first: bytes) -> list[grpc.Future]:
        return [ch.stream_unary(NODE + METHODS[i % 4]).future(silent(release, *first)) for i in range(n)]

    headers = [admitted_fit_header(coordinator) for _ in range(3)]
    try:
        # one caller opens eight idle calls: four are held, four refused at once
        flood = hold(insider, 8)
        time.sleep(0.5)
        held = [c for c in flood if not c.done()]
        assert len(held) == 4 and [outcome(c, 0) for c in flood if c.done()] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 4
        # several callers join: the coordinator with headers admitted for accepted runs, then nothing
        held += [c for h in headers for c in hold(coordinator, 1, h)]
        held += hold(stranger, 4)
        time.sleep(0.5)
        extra = hold(outsider, 1)  # callers the policy does not name already hold eight slots: none is left for them
        time.sleep(0.3)
        assert all(not c.done() for c in held), [(i, outcome(c, 0)) for i, c in enumerate(held) if c.done()]
        assert outcome(extra[0], 5) == grpc.StatusCode.RESOURCE_EXHAUSTED
        # 11 idle calls held open: health answers at once, and so does the coordinator
        latencies = [health_check(ch) for ch in (coordinator, coordinator, stranger, insider)]
        assert max(latencies) < 1.0, latencies
        assert describe(coordinator).node_id == PARTY

        # the idle timeout ends every held call, and frees its worker and slot
        ended = [outcome(c, IDLE + 5) for c in held]
        assert set(ended) <= ENDED, ended
        time.sleep(0.5)  # the caller hears of the end first; the node's thread then audits and lets go
        # every worker was freed: as many idle calls as the node serves at once are all held, and all end together
        started = time.monotonic()
        second = [c for ch in (coordinator, stranger, insider) for c in hold(ch, 4)]
        time.sleep(0.5)
        assert all(not c.done() for c in second), [outcome(c, 0) for c in second if c.done()]
        assert health_check(coordinator) < 1.0  # with every slot taken, health still has its own workers
        with pytest.raises(grpc.RpcError) as full:
            describe(outsider)
        assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # refused at once, not queued
        assert {outcome(c, IDLE + 5) for c in second} <= ENDED
        assert time.monotonic() - started < 2 * IDLE  # one idle timeout for all twelve: none waited for a worker
    finally:
        release.set()
        for ch in channels.values():
            ch.close()
    entries = audit_entries(state, until=lambda es: len(idle_entries(es)) >= len(held) + len(second))
    idle = idle_entries(entries)
    assert len(idle) == len(held) + len(second) == 23
    assert {e["caller"] for e in idle} == {COORDINATOR, STRANGER, INSIDER}
    refused = [(e["caller"], e["rpc"]) for e in entries if e["reasons"] and "too many calls" in e["reasons"][0]]
    assert Counter(caller for caller, _ in refused) == {INSIDER: 4, OUTSIDER: 2}  # per caller; then callers not named
    assert [rpc for caller, rpc in refused if caller == OUTSIDER] == ["Fit", "Describe"]


def test_health_checks_whose_request_never_comes_hold_one_health_worker_per_caller_briefly(
    city: City, flooded_node: tuple[str, Path]
) -> None:
    address, _ = flooded_node
    release = threading.Event()
    check = "/grpc.health.v1.Health/Check"
    try:
        with channel(city, address, STRANGER) as stranger, channel(city, address, COORDINATOR) as coordinator:
            silent_checks = [stranger.stream_unary(check).future(silent(release)) for _ in range(3)]
            time.sleep(0.5)
            states = Counter(outcome(c, 0).name if c.done() else "held" for c in silent_checks)
            assert states == {"held": 1, "RESOURCE_EXHAUSTED": 2}  # one health check in flight per caller
            assert health_check(coordinator) < 1.0
            assert {outcome(c, IDLE + 5) for c in silent_checks} <= {*ENDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
    finally:
        release.set()


def test_a_health_watch_ends_after_the_idle_timeout(city: City, flooded_node: tuple[str, Path]) -> None:
    """A watch waits inside the health service, where no read or reply is seen: it lasts one idle timeout."""
    address, _ = flooded_node
    with channel(city, address, STRANGER) as ch:
        started = time.monotonic()
        watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as caught:
            list(watch)
    assert caught.value.code() in ENDED
    assert IDLE <= time.monotonic() - started < IDLE + 2


def test_a_unary_request_sent_slowly_gets_its_answer(city: City, flooded_node: tuple[str, Path]) -> None:
    """The idle timeout is per wait: a caller that sends within it is served."""
    address, _ = flooded_node
    request = pb.DescribeRequest(context=pb.RunContext(run_id="slow", purpose=PURPOSE)).SerializeToString()

    def slowly() -> Iterator[bytes]:
        time.sleep(IDLE / 2)
        yield request

    with channel(city, address, COORDINATOR) as ch:
        reply = ch.stream_unary(NODE + "Describe")(slowly(), timeout=10)
    assert pb.DescribeReply.FromString(reply).node_id == PARTY
