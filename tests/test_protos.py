"""The committed generated code matches the .proto files (run `make protos` if not)."""

from __future__ import annotations

from pathlib import Path

from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[1]
GENERATED = ("node_pb2.py", "node_pb2.pyi", "node_pb2_grpc.py")


def test_generated_code_is_in_sync_with_protos(tmp_path: Path) -> None:
    proto = "protos/federation/proto/v1/node.proto"
    include = str(Path(protoc.__file__).parent / "_proto")
    status = protoc.main(
        [
            "protoc",
            f"-I{REPO / 'protos'}",
            f"-I{include}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(REPO / proto),
        ]
    )
    assert status == 0
    for name in GENERATED:
        fresh = (tmp_path / "federation" / "proto" / "v1" / name).read_text()
        committed = (REPO / "federation" / "proto" / "v1" / name).read_text()
        assert fresh == committed, f"federation/proto/v1/{name} is stale: run `make protos` and commit the result"


def test_every_rpc_of_the_contract_is_served() -> None:
    from federation.node.servicer import NodeServicer
    from federation.proto.v1 import node_pb2

    service = node_pb2.DESCRIPTOR.services_by_name["NodeService"]
    required = {"Describe", "Propose", "Fit", "Evaluate", "Export"}
    assert required <= {m.name for m in service.methods}
    for method in service.methods:
        assert method.name in NodeServicer.__dict__, f"{method.name} is in the contract but not implemented"
