"""Fuzzing a real node process: at least 10,000 malformed or mutated messages over every RPC of NodeService.

Seeded mutations of valid serialized requests (bit flips, truncations, random
bytes, wrong and extreme field values, huge strings and lists, streams without
their header, with two, or with garbage chunks) go out as raw bytes from the
coordinator's certificate (so they reach deep into accepted runs), a
stranger's and a fellow department's. The node must not die, must never
answer INTERNAL or UNKNOWN, must answer health checks throughout, and its
memory and audit log must grow by bounded amounts. The figures are printed
(`pytest -s`) so they can be quoted.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from fedkit import COORDINATOR, STRANGER, City, small_task
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from wirefuzz import mutate_bytes, mutated, mutated_stream

from federation.experiments.launcher import NodeProcess, start_nodes, stop_nodes
from federation.models.registry import build_model
from federation.models.training import get_arrays
from federation.proto.v1 import node_pb2 as pb
from federation.secagg.config import RoundParameters
from federation.task import RunContext
from federation.transport import serde, serde_secagg
from federation.transport.streaming import iter_chunks, tensor_header

pytestmark = pytest.mark.slow

SEED = 20_240_611
TARGET_MESSAGES = 10_000
TIME_LIMIT = 180.0  # a hard stop on a very slow machine; the run takes about a minute
PARTY = "north-district"
INSIDER = "hills-district"
PURPOSE = "pollution-enforcement"
NODE = "/federation.proto.v1.NodeService/"
N_INPUTS = 14
UNARY = {  # request type, and whether the reply is a stream
    "Describe": (pb.DescribeRequest, False),
    "Propose": (pb.ProposeRequest, False),
    "Stats": (pb.StatsRequest, False),
    "TrainLocal": (pb.TrainLocalRequest, True),
    "Export": (pb.ExportRequest, True),
    "AdvertiseKeys": (pb.AdvertiseKeysRequest, False),
    "ShareKeys": (pb.ShareKeysRequest, False),
    "ConfirmSurvivors": (pb.ConfirmSurvivorsRequest, False),
    "Unmask": (pb.UnmaskRequest, False),
}
STREAMS = {"Fit": (pb.FitRequest, True), "Evaluate": (pb.EvaluateRequest, False), "MaskedUpdate": (pb.MaskedUpdateRequest, True)}


@dataclass
class Bases:
    """Valid requests, as the coordinator would send them, for runs this node accepted."""

    unary: dict[str, list[Message]] = field(default_factory=dict)
    streams: dict[str, list[tuple[Message, list[bytes]]]] = field(default_factory=dict)


def build_bases(propose: Callable[[pb.ProposeRequest], None]) -> Bases:
    task = small_task(rounds=3)
    arrays = get_arrays(build_model(task.model, N_INPUTS, seed=0))
    chunks = list(iter_chunks(arrays, chunk_bytes=24))
    parameters = serde_secagg.parameters_to_pb(
        RoundParameters(("central-district", PARTY, INSIDER), 2, None, 1.0, sum(a.size for _, a in arrays) + 1, 100.0)
    )
    bases = Bases()
    for i in range(8):
        ctx = RunContext(f"fuzz-{i}-{uuid.uuid4().hex[:6]}", PURPOSE, 1)
        c, t = serde.context_to_pb(ctx), serde.task_to_pb(task)
        request = pb.ProposeRequest(context=c, task=t, cohort_size=3, release="raw")
        propose(request)
        bases.unary.setdefault("Propose", []).append(request)
        for rpc, kind in (("Describe", pb.DescribeRequest), ("ConfirmSurvivors", pb.ConfirmSurvivorsRequest)):
            bases.unary.setdefault(rpc, []).append(kind(context=c, survivors=[0, 1, 2]) if rpc != "Describe" else kind(context=c))
        for rpc in ("Stats", "TrainLocal", "Export"):
            bases.unary.setdefault(rpc, []).append(UNARY[rpc][0](context=c, task=t))
        bases.unary.setdefault("AdvertiseKeys", []).append(pb.AdvertiseKeysRequest(context=c, task=t, parameters=parameters))
        peers = [
            pb.PeerKeys(index=j, encryption_public_key=bytes(32), masking_public_key=bytes(32), certificate=b"0", signature=b"s")
            for j in range(3)
        ]
        bases.unary.setdefault("ShareKeys", []).append(pb.ShareKeysRequest(context=c, peers=peers))
        bases.unary.setdefault("Unmask", []).append(
            pb.UnmaskRequest(context=c, signatures=[pb.SurvivorSignature(index=1, signature=b"s")])
        )
        header = {"context": c, "task": t, "tensors": tensor_header(arrays)}
        bases.streams.setdefault("Fit", []).append((pb.FitHeader(**header), chunks))
        bases.streams.setdefault("Evaluate", []).append((pb.EvaluateHeader(**header), chunks))
        shares = [pb.EncryptedShare(peer=0, ciphertext=bytes(100))]
        bases.streams.setdefault("MaskedUpdate", []).append((pb.MaskedUpdateHeader(**header, shares=shares), chunks))
    return bases


def call(ch: grpc.Channel, rpc: str, messages: list[bytes]) -> grpc.StatusCode:
    """Send raw bytes; the status the node answered with."""
    path = NODE + rpc
    try:
        if rpc in STREAMS:
            if STREAMS[rpc][1]:
                list(ch.stream_stream(path)(iter(messages), timeout=20))
            else:
                ch.stream_unary(path)(iter(messages), timeout=20)
        elif rpc.startswith("Health/"):
            ch.unary_unary("/grpc.health.v1.Health/Check")(messages[0], timeout=20)
        elif UNARY[rpc][1]:
            list(ch.unary_stream(path)(messages[0], timeout=20))
        else:
            ch.unary_unary(path)(messages[0], timeout=20)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_channel(city: City, address: str, name: str) -> grpc.Channel:
    ca, cert, key = city.identity(name).read()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    options = [("grpc.ssl_target_name_override", PARTY), ("grpc.max_send_message_length", 8 << 20)]
    return grpc.secure_channel(address, credentials, options=options)


@pytest.fixture(scope="module")
def node(city: City, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, Path]]:
    root = tmp_path_factory.mktemp("fuzz")
    nodes = start_nodes({PARTY: city.manifest(PARTY)}, root / "logs", state_root=root / "state")
    yield nodes[0], root / "state" / PARTY / "audit.jsonl"
    stop_nodes(nodes)


class HealthMonitor(threading.Thread):
    """Checks health every 0.2 s during the fuzzing, from a caller that sends nothing else."""

    def __init__(self, ch: grpc.Channel) -> None:
        super().__init__(daemon=True)
        self.stub, self.stop, self.latencies, self.failures = health_pb2_grpc.HealthStub(ch), threading.Event(), [], []

    def run(self) -> None:
        while not self.stop.wait(0.2):
            start = time.monotonic()
            try:
                reply = self.stub.Check(health_pb2.HealthCheckRequest(service="federation.proto.v1.NodeService"), timeout=3)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            except (grpc.RpcError, AssertionError) as error:
                self.failures.append(repr(error)[:200])
            self.latencies.append(time.monotonic() - start)


def test_ten_thousand_malformed_messages_neither_crash_nor_confuse_the_node(node: tuple[NodeProcess, Path], city: City) -> None:
    process, audit = node
    channels = {name: open_channel(city, process.address, name) for name in (COORDINATOR, STRANGER, INSIDER)}
    monitor_channel = open_channel(city, process.address, COORDINATOR)

    def propose(request: pb.ProposeRequest) -> None:
        reply = pb.ProposeReply.FromString(
            channels[COORDINATOR].unary_unary(NODE + "Propose")(request.SerializeToString(), timeout=30)
        )
        assert reply.accepted, reply.reasons

    bases = build_bases(propose)
    rpcs = [*UNARY, *STREAMS]
    statuses: Counter[str] = Counter()
    per_rpc: Counter[str] = Counter()
    sent = [0, 0]  # messages, calls
    lock = threading.Lock()

    def fuzz(worker: int, callers: list[str], stop_at: int, deadline: float) -> None:
        rng = random.Random(SEED + worker)
        while time.monotonic() < deadline:
            with lock:
                if sent[0] >= stop_at:
                    return
            caller = rng.choice(callers)
            rpc = "Health/Check" if caller != COORDINATOR and rng.random() < 0.05 else rng.choice(rpcs)
            if rpc == "Health/Check":
                messages = [mutate_bytes(health_pb2.HealthCheckRequest(service="").SerializeToString(), rng)]
            elif rpc in STREAMS:
                messages = mutated_stream(STREAMS[rpc][0], *rng.choice(bases.streams[rpc]), rng)
            else:
                messages = [mutated(rng.choice(bases.unary[rpc]), rng)]
            status = call(channels[caller], rpc, messages)
            with lock:
                statuses[status.name] += 1
                per_rpc[f"{rpc} {status.name}"] += 1
                sent[0] += max(len(messages), 1)
                sent[1] += 1

    workers = [[COORDINATOR], [COORDINATOR], [STRANGER, INSIDER, COORDINATOR]]

    def run(stop_at: int) -> None:
        deadline = time.monotonic() + TIME_LIMIT
        threads = [threading.Thread(target=fuzz, args=(i, callers, stop_at, deadline)) for i, callers in enumerate(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run(300)  # warm up: imports, allocator pools, the first trainings
    rss_before, lines_before, bytes_before = (
        rss_kib(process.process.pid),
        len(audit.read_text().splitlines()),
        audit.stat().st_size,
    )
    warm_messages, warm_calls = sent
    monitor = HealthMonitor(monitor_channel)
    monitor.start()
    started = time.monotonic()
    run(warm_messages + TARGET_MESSAGES)
    seconds = time.monotonic() - started
    monitor.stop.set()
    monitor.join()
    assert process.process.poll() is None, process.log_file.read_text(errors="replace")[-3000:]
    rss_after = rss_kib(process.process.pid)
    text = audit.read_text()
    lines = text.splitlines()
    messages, calls = sent[0] - warm_messages, sent[1] - warm_calls
    added = len(lines) - lines_before
    added_bytes = audit.stat().st_size - bytes_before
    longest = max(len(line) for line in lines[lines_before:])
    print(
        f"\nfuzz: {messages} messages in {calls} calls over {seconds:.1f} s; statuses {dict(statuses.most_common())}; "
        f"INTERNAL {statuses['INTERNAL']}; UNKNOWN {statuses['UNKNOWN']}; "
        f"RSS {rss_before // 1024} MiB -> {rss_after // 1024} MiB (+{(rss_after - rss_before) / 1024:.1f} MiB); "
        f"audit +{added} entries ({added / calls:.3f} per call), +{added_bytes // 1024} KiB, longest {longest} bytes; "
        f"health checks {len(monitor.latencies)}, slowest {max(monitor.latencies):.3f} s, failures {len(monitor.failures)}"
    )
    print("per rpc and status:", dict(sorted(per_rpc.items())))
    assert messages >= TARGET_MESSAGES, f"only {messages} messages within {TIME_LIMIT:.0f} s"
    assert statuses["INTERNAL"] == 0 and statuses["UNKNOWN"] == 0, {
        k: v for k, v in per_rpc.items() if "INTERNAL" in k or "UNKNOWN" in k
    }
    assert not monitor.failures, monitor.failures[:5]
    assert len(monitor.latencies) > 20 and max(monitor.latencies) < 3.0  # generous: the machine is shared
    assert rss_after - rss_before < 150 * 1024
    assert added <= messages  # one entry per call, and one per round a TrainLocal releases
    assert added_bytes <= 1024 * messages and longest <= 16_384  # small entries only
    log = process.log_file.read_text(errors="replace")
    assert "Traceback" not in log and "failed (ref" not in log, log[log.find("Traceback") - 2000 :][:4000]
    for ch in (*channels.values(), monitor_channel):
        ch.close()
