"""A node served over real gRPC with mutual TLS on 127.0.0.1: admission, errors, streams."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import numpy as np
import pytest
from fedkit import COORDINATOR, STRANGER, City, LiveNode, serve, small_task
from grpc_health.v1 import health_pb2, health_pb2_grpc

from federation.coordinator.client import NodeClient
from federation.errors import InvalidRequest, NodeUnavailable, PolicyDenied, ProtocolOrderError
from federation.models.registry import build_model
from federation.models.training import get_arrays
from federation.proto.v1 import node_pb2 as pb
from federation.proto.v1 import node_pb2_grpc as pb_grpc
from federation.task import RunContext
from federation.transport.tls import init_ca, issue_certificate

PURPOSE = "pollution-enforcement"
N_INPUTS = 14  # nine numeric features plus five industry codes


def context(round_: int = 0) -> RunContext:
    return RunContext(f"test-{uuid.uuid4().hex[:8]}", PURPOSE, round_)


def raw_channel(node: LiveNode, city: City, *, name: str = COORDINATOR) -> grpc.Channel:
    identity = city.identity(name)
    ca, cert, key = identity.read()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    return grpc.secure_channel(node.address, credentials, options=[("grpc.ssl_target_name_override", node.node_id)])


def test_health_service_reports_serving(live_nodes: dict[str, LiveNode], city: City) -> None:
    node = live_nodes["north-district"]
    with raw_channel(node, city) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="federation.proto.v1.NodeService")
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_client_without_certificate_is_rejected(live_nodes: dict[str, LiveNode], city: City) -> None:
    node = live_nodes["north-district"]
    credentials = grpc.ssl_channel_credentials(root_certificates=city.identity().read()[0])
    options = [("grpc.ssl_target_name_override", node.node_id)]
    with grpc.secure_channel(node.address, credentials, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_certificate_from_another_ca_is_rejected(live_nodes: dict[str, LiveNode], city: City, tmp_path: Path) -> None:
    init_ca(tmp_path)
    rogue = issue_certificate(tmp_path, COORDINATOR)  # right name, wrong authority
    node = live_nodes["north-district"]
    client = NodeClient(node.node_id, node.address, rogue.__class__(city.identity().ca_cert, rogue.cert, rogue.key), timeout=10)
    with pytest.raises(NodeUnavailable):
        client.describe(context())


def test_recipient_not_in_policy_gets_permission_denied(live_nodes: dict[str, LiveNode], city: City) -> None:
    node = live_nodes["north-district"]
    with pytest.raises(PolicyDenied) as caught:
        node.client(city, STRANGER).describe(context())
    assert any(STRANGER in reason for reason in caught.value.reasons)
    with raw_channel(node, city, name=STRANGER) as channel:
        with pytest.raises(grpc.RpcError) as rpc:
            channel.unary_unary("/federation.proto.v1.NodeService/Describe")(
                pb.DescribeRequest(context=pb.RunContext(run_id="r", purpose=PURPOSE)).SerializeToString()
            )
    assert rpc.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_describe_offers_fields_without_values(live_nodes: dict[str, LiveNode], city: City) -> None:
    description = live_nodes["hills-district"].client(city).describe(context())
    assert description.node_id == "hills-district"
    assert "violation" in {f.name for f in description.fields}
    assert "firm_name" not in {f.name for f in description.fields}
    assert description.approx_records > 0
    assert {"logreg", "mlp"} <= set(description.models)


def test_export_is_refused_without_raw_release(fresh_city: City) -> None:
    policy = fresh_city.policy("north-district")
    policy.write_text(policy.read_text().replace('release = "raw"', 'release = "update"'))
    node = serve(fresh_city, "north-district")
    try:
        client = node.client(fresh_city)
        ctx, task = context(), small_task()
        answer = client.propose(ctx, task, cohort_size=3, release="update")
        assert answer.accepted
        with pytest.raises(PolicyDenied) as caught:
            client.export(ctx, task)
        assert any("raw" in reason for reason in caught.value.reasons)
        assert client.traffic.raw_records == 0
    finally:
        node.server.stop(0)


def test_export_returns_only_task_columns_of_the_training_split(live_nodes: dict[str, LiveNode], city: City) -> None:
    client = live_nodes["hills-district"].client(city)
    ctx, task = context(), small_task()
    assert client.propose(ctx, task, cohort_size=3, release="raw").accepted
    table = client.export(ctx, task)
    assert set(table.column_names) == {*task.features, task.target}
    assert client.traffic.raw_records == table.num_rows > 0


def test_malformed_bytes_get_invalid_argument_and_the_node_keeps_serving(live_nodes: dict[str, LiveNode], city: City) -> None:
    node = live_nodes["north-district"]
    with raw_channel(node, city) as channel:
        propose = channel.unary_unary("/federation.proto.v1.NodeService/Propose")
        with pytest.raises(grpc.RpcError) as caught:
            propose(b"\xff\xff\xff\x00garbage", timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert node.client(city).describe(context()).node_id == "north-district"


def test_semantically_invalid_task_gets_invalid_argument(live_nodes: dict[str, LiveNode], city: City) -> None:
    client = live_nodes["north-district"].client(city)
    bad_model = small_task("transformer")
    with pytest.raises(InvalidRequest, match="unknown model"):
        client.propose(context(), bad_model, cohort_size=3, release="update")
    with pytest.raises(InvalidRequest, match="not in schema"):
        client.propose(
            context(),
            small_task().__class__(**{**small_task().__dict__, "features": ("salary",)}),
            cohort_size=3,
            release="update",
        )


def test_fit_out_of_order_gets_failed_precondition(live_nodes: dict[str, LiveNode], city: City) -> None:
    client = live_nodes["north-district"].client(city)
    task = small_task()
    arrays = get_arrays(build_model(task.model, N_INPUTS, seed=0))
    with pytest.raises(ProtocolOrderError, match="Propose first"):
        client.fit(context(1), task, arrays)
    ctx = context(1)
    assert client.propose(ctx, task, cohort_size=3, release="update").accepted
    client.fit(ctx, task, arrays)
    with pytest.raises(ProtocolOrderError, match="already ran"):
        client.fit(ctx, task, arrays)  # a replayed round


def test_fit_stream_without_header_gets_invalid_argument(live_nodes: dict[str, LiveNode], city: City) -> None:
    node = live_nodes["north-district"]
    with raw_channel(node, city) as channel:
        fit = channel.stream_stream(
            "/federation.proto.v1.NodeService/Fit",
            request_serializer=pb.FitRequest.SerializeToString,
            response_deserializer=pb.FitReply.FromString,
        )
        with pytest.raises(grpc.RpcError) as caught:
            list(fit(iter([pb.FitRequest(chunk=b"1234")]), timeout=10))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "header" in (caught.value.details() or "")


def test_fit_with_wrong_shapes_gets_invalid_argument(live_nodes: dict[str, LiveNode], city: City) -> None:
    client = live_nodes["north-district"].client(city)
    ctx, task = context(1), small_task()
    assert client.propose(ctx, task, cohort_size=3, release="update").accepted
    wrong = [
        (name, np.zeros((a.shape[0] + 1, *a.shape[1:]), np.float32))
        for name, a in get_arrays(build_model(task.model, N_INPUTS, seed=0))
    ]
    with pytest.raises(InvalidRequest, match="shape"):
        client.fit(ctx, task, wrong)


def test_unreachable_node_is_reported_not_hung(city: City) -> None:
    client = NodeClient("north-district", "127.0.0.1:1", city.identity(), timeout=5)
    with pytest.raises(NodeUnavailable, match="north-district"):
        client.describe(context())


def test_a_100_mb_model_streams_both_ways(live_nodes: dict[str, LiveNode], city: City) -> None:
    """Fit with a model of >100 MB: in to the node and back, in bounded chunks."""
    client = live_nodes["hills-district"].client(city, timeout=300)
    task = small_task("mlp", rounds=1, hidden=[2048] * 8)
    arrays = get_arrays(build_model(task.model, N_INPUTS, seed=1))
    size = sum(a.nbytes for _, a in arrays)
    assert size > 100 * 2**20
    ctx = context(1)
    assert client.propose(ctx, task, cohort_size=3, release="update").accepted
    outcome = client.fit(ctx, task, arrays)
    assert [(n, a.shape) for n, a in outcome.arrays] == [(n, a.shape) for n, a in arrays]
    assert client.traffic.bytes_by_rpc["Fit"] > size
    assert any(not np.array_equal(a, b) for (_, a), (_, b) in zip(outcome.arrays, arrays, strict=True))


@pytest.mark.parametrize("caller", [STRANGER, COORDINATOR])
def test_a_huge_announced_tensor_is_refused_from_its_header_before_any_byte_is_read(
    live_nodes: dict[str, LiveNode], city: City, caller: str
) -> None:
    """Authorise first, then allocate: a 4 GiB announcement gets its answer while the sender still holds every byte."""
    import json
    import threading

    from federation.transport import serde

    node = live_nodes["north-district"]
    ctx = context(1)
    task = small_task(rounds=1)
    if caller == COORDINATOR:  # an accepted run, but tensors that are not the task's model
        assert node.client(city).propose(ctx, task, cohort_size=3, release="update").accepted
    header = pb.FitHeader(context=serde.context_to_pb(ctx), task=serde.task_to_pb(task))
    header.tensors.tensors.add(name="weight", dtype="<f4", shape=[1 << 30])
    header.tensors.total_bytes = 4 << 30
    release = threading.Event()

    def requests():  # type: ignore[no-untyped-def]
        yield pb.FitRequest(header=header)
        release.wait(30)  # the chunks would follow; the node must not wait for them

    try:
        with raw_channel(node, city, name=caller) as channel:
            stub = pb_grpc.NodeServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                list(stub.Fit(requests(), timeout=20))
    finally:
        release.set()
    expected = grpc.StatusCode.PERMISSION_DENIED if caller == STRANGER else grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.code() == expected, caught.value.details()
    log = city.root / ".federation" / "state" / "north-district" / "audit.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(e["rpc"] == "Fit" and e["run_id"] == ctx.run_id and e["decision"] in ("deny", "error") for e in entries)


def test_every_reply_carries_a_receipt_that_holds_the_log_to_what_the_node_signed(fresh_city: City, tmp_path: Path) -> None:
    import json

    from federation.node.audit import verify
    from federation.node.manifest import load_manifest
    from federation.transport.receipts import ReceiptBook

    node = serve(fresh_city, "north-district")
    state = load_manifest(fresh_city.manifest("north-district")).state_dir
    run_dir = tmp_path / "run"
    book = ReceiptBook(run_dir)
    try:
        client = NodeClient(node.node_id, node.address, fresh_city.identity(), timeout=30, receipts=book)
        stranger = NodeClient(node.node_id, node.address, fresh_city.identity(STRANGER), timeout=30, receipts=book)
        ctx = context()
        client.describe(ctx)
        assert client.propose(ctx, small_task(), cohort_size=3, release="update").accepted
        with pytest.raises(PolicyDenied):
            stranger.describe(ctx)  # a refusal carries a receipt too
        client.close()
        stranger.close()
    finally:
        node.server.stop(0).wait()
    assert book.count("north-district") == 3
    result = verify(state, ca=fresh_city.pki / "ca.crt", receipts=run_dir)
    assert result.intact and result.receipts == 3 and result.signer == "north-district", result.problems
    # the node's operator cuts the last two entries and rewrites the head: only the receipts tell
    log_path = state / "audit.jsonl"
    kept = log_path.read_text().splitlines()[:-2]
    log_path.write_text("".join(line + "\n" for line in kept))
    import base64

    from federation.node.audit_chain import head_message, key_id
    from federation.trust.certificates import Credentials

    _, cert, key = fresh_city.identity("north-district").read()
    operator = Credentials.from_pem(cert, key)  # the operator holds the node's key and re-signs the head
    last_hash = json.loads(kept[-1])["hash"]
    sig = base64.b64encode(operator.sign(head_message(len(kept), last_hash))).decode()
    head = {"seq": len(kept), "hash": last_hash, "key": key_id(operator.certificate), "sig": sig}
    (state / "audit.head").write_text(json.dumps(head))
    assert verify(state, ca=fresh_city.pki / "ca.crt").intact
    cut = verify(state, ca=fresh_city.pki / "ca.crt", receipts=run_dir)
    assert not cut.intact and all("cut off" in p for p in cut.problems) and len(cut.problems) == 2
