"""The NodeService servicer: converts messages and streams, then calls a handler.

No logic lives here; errors raised by handlers become gRPC statuses in
`transport.interceptors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pyarrow as pa

from federation.errors import InvalidRequest
from federation.models.training import NamedArrays
from federation.node.handlers import NodeHandlers
from federation.policy.model import RELEASE_LEVELS, Release
from federation.proto.v1 import node_pb2 as pb
from federation.proto.v1 import node_pb2_grpc
from federation.task import RunContext, TaskSpec
from federation.transport import serde
from federation.transport.server import caller_identity
from federation.transport.streaming import CHUNK_BYTES, TensorAssembler, iter_chunks, tensor_header


def _read_header(requests: Iterator[Any]) -> Any:
    """The first message of a tensor stream, which must be its header."""
    first = next(requests, None)
    if first is None or first.WhichOneof("item") != "header":
        raise InvalidRequest("a tensor stream must start with its header")
    return first.header


def _read_chunks(requests: Iterator[Any], header: Any) -> NamedArrays:
    """The chunks after an admitted header, into arrays preallocated from it."""
    assembler = TensorAssembler(header.tensors)
    for message in requests:
        if message.WhichOneof("item") != "chunk":
            raise InvalidRequest("a tensor stream carries exactly one header, before its chunks")
        assembler.feed(message.chunk)
    return assembler.finish()


def _release(value: str) -> Release:
    if value not in RELEASE_LEVELS:
        raise InvalidRequest(f"release {value!r} is not one of {list(RELEASE_LEVELS)}")
    return value


class NodeServicer(node_pb2_grpc.NodeServiceServicer):
    def __init__(self, handlers: NodeHandlers) -> None:
        self.handlers = handlers

    def _admitted_stream(
        self, rpc: str, requests: Iterator[Any], context: grpc.ServicerContext
    ) -> tuple[str, Any, RunContext, TaskSpec, NamedArrays]:
        """Read the header, let the handlers admit it, and only then read (and allocate) the tensors."""
        caller = self._caller(context)
        header = _read_header(requests)
        run, task = serde.context_from_pb(header.context), serde.task_from_pb(header.task)
        self.handlers.admit_tensors(caller, rpc, run, task, serde.tensor_specs(header.tensors))
        return caller, header, run, task, _read_chunks(requests, header)

    def _caller(self, context: grpc.ServicerContext) -> str:
        """The caller's certificate identity; a revoked certificate is UNAUTHENTICATED."""
        peers = self.handlers.peers
        return caller_identity(context, refusal=peers.caller_refusal if peers is not None else None)

    def Describe(self, request: pb.DescribeRequest, context: grpc.ServicerContext) -> pb.DescribeReply:
        ctx = serde.context_from_pb(request.context)
        return serde.description_to_pb(self.handlers.describe(self._caller(context), ctx))

    def Propose(self, request: pb.ProposeRequest, context: grpc.ServicerContext) -> pb.ProposeReply:
        answer = self.handlers.propose(
            self._caller(context),
            serde.context_from_pb(request.context),
            serde.task_from_pb(request.task),
            cohort_size=request.cohort_size,
            release=_release(request.release),
        )
        return serde.answer_to_pb(answer)

    def Stats(self, request: pb.StatsRequest, context: grpc.ServicerContext) -> pb.StatsReply:
        stats = self.handlers.stats(
            self._caller(context), serde.context_from_pb(request.context), serde.task_from_pb(request.task)
        )
        return serde.stats_to_pb(stats)

    def Fit(self, request_iterator: Iterator[pb.FitRequest], context: grpc.ServicerContext) -> Iterator[pb.FitReply]:
        caller, _, run, task, arrays = self._admitted_stream("Fit", request_iterator, context)
        outcome = self.handlers.fit(caller, run, task, arrays)
        yield pb.FitReply(
            result=pb.FitResult(
                num_examples=outcome.num_examples, train_loss=outcome.train_loss, tensors=tensor_header(outcome.arrays)
            )
        )
        for chunk in iter_chunks(outcome.arrays):
            yield pb.FitReply(chunk=chunk)

    def Evaluate(self, request_iterator: Iterator[pb.EvaluateRequest], context: grpc.ServicerContext) -> pb.EvaluateReply:
        caller, _, run, task, arrays = self._admitted_stream("Evaluate", request_iterator, context)
        sums = self.handlers.evaluate(caller, run, task, arrays)
        return serde.eval_to_pb(sums)

    def TrainLocal(self, request: pb.TrainLocalRequest, context: grpc.ServicerContext) -> Iterator[pb.TrainLocalReply]:
        results = self.handlers.train_local(
            self._caller(context), serde.context_from_pb(request.context), serde.task_from_pb(request.task)
        )
        for round_, sums, n in results:
            yield pb.TrainLocalReply(round=round_, metrics=serde.eval_to_pb(sums), num_examples=n)

    def AdvertiseKeys(self, request: pb.AdvertiseKeysRequest, context: grpc.ServicerContext) -> pb.AdvertiseKeysReply:
        advert = self.handlers.secure.advertise_keys(
            self._caller(context),
            serde.context_from_pb(request.context),
            serde.task_from_pb(request.task),
            serde.parameters_from_pb(request.parameters),
        )
        return serde.advert_to_pb(advert)

    def ShareKeys(self, request: pb.ShareKeysRequest, context: grpc.ServicerContext) -> pb.ShareKeysReply:
        shares = self.handlers.secure.share_keys(
            self._caller(context), serde.context_from_pb(request.context), serde.peers_from_pb(request.peers)
        )
        return pb.ShareKeysReply(shares=serde.shares_to_pb(shares))

    def MaskedUpdate(
        self, request_iterator: Iterator[pb.MaskedUpdateRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.MaskedUpdateReply]:
        caller, header, run, task, arrays = self._admitted_stream("MaskedUpdate", request_iterator, context)
        masked = self.handlers.secure.masked_update(caller, run, task, serde.shares_from_pb(header.shares), arrays)
        result = [("masked", masked)]
        yield pb.MaskedUpdateReply(result=pb.MaskedResult(tensors=tensor_header(result)))
        for chunk in iter_chunks(result):
            yield pb.MaskedUpdateReply(chunk=chunk)

    def ConfirmSurvivors(self, request: pb.ConfirmSurvivorsRequest, context: grpc.ServicerContext) -> pb.ConfirmSurvivorsReply:
        signature = self.handlers.secure.confirm_survivors(
            self._caller(context), serde.context_from_pb(request.context), frozenset(request.survivors)
        )
        return pb.ConfirmSurvivorsReply(signature=signature)

    def Unmask(self, request: pb.UnmaskRequest, context: grpc.ServicerContext) -> pb.UnmaskReply:
        revealed = self.handlers.secure.unmask(
            self._caller(context), serde.context_from_pb(request.context), serde.signatures_from_pb(request.signatures)
        )
        return pb.UnmaskReply(shares=[pb.RevealedShare(owner=o, kind=k, share=s) for o, k, s in revealed])

    def Export(self, request: pb.ExportRequest, context: grpc.ServicerContext) -> Iterator[pb.ExportReply]:
        table = self.handlers.export(
            self._caller(context), serde.context_from_pb(request.context), serde.task_from_pb(request.task)
        )
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        data = memoryview(sink.getvalue())
        for index, start in enumerate(range(0, max(len(data), 1), CHUNK_BYTES)):
            yield pb.ExportReply(chunk=bytes(data[start : start + CHUNK_BYTES]), rows=table.num_rows if index == 0 else 0)
