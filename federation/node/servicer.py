"""The NodeService servicer: converts messages and streams, then calls a handler.

No logic lives here; errors raised by handlers become gRPC statuses in
`transport.interceptors`. What is refused here, before a handler sees the
call (a caller without a usable certificate, a value that does not convert,
a stream without its header or with chunks that do not fit it), is audited
here, once per call; the handlers audit everything after that.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pyarrow as pa

from federation.errors import FederationError, InvalidRequest
from federation.models.training import NamedArrays
from federation.node.audit import AuditEntry
from federation.node.handlers import NodeHandlers
from federation.node.personalise_handler import personalise_here
from federation.node.vertical_handlers import Reply as VerticalReply
from federation.policy.model import RELEASE_LEVELS, Release
from federation.proto.v1 import node_pb2 as pb
from federation.proto.v1 import node_pb2_grpc
from federation.task import RunContext, TaskSpec
from federation.transport import serde, serde_psi, serde_secagg, serde_vertical
from federation.transport.bounds import bounded_names
from federation.transport.interceptors import peer_name
from federation.transport.serde_scores import scores_to_pb
from federation.transport.server import caller_identity
from federation.transport.streaming import CHUNK_BYTES, TensorAssembler, iter_chunks, tensor_header

log = logging.getLogger(__name__)
MAX_AUDIT_REASON = 300  # characters of a refusal's reason in its audit entry
MAX_COLUMNS = 256  # asked for in one ExportKeyed


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
        raise InvalidRequest(f"release {value[:40]!r} is not one of {list(RELEASE_LEVELS)}")
    return value


class NodeServicer(node_pb2_grpc.NodeServiceServicer):
    def __init__(self, handlers: NodeHandlers) -> None:
        self.handlers = handlers

    def audit_receipt(self) -> str | None:
        """The signed hash of the latest audit entry, for the reply about to leave (None for an unsigned log)."""
        receipt = self.handlers.audit.receipt()
        return receipt.to_json() if receipt is not None else None

    def audit_refusal(self, caller: str, rpc: str, reason: str) -> None:
        """One audit entry for a call refused before a handler ran (here or in the interceptor).

        The reason is cut short, so a flood adds one small entry per call; a log
        that cannot be written does not turn the refusal into something else.
        """
        entry = AuditEntry(caller=caller[:200], rpc=rpc, decision="error", reasons=[reason[:MAX_AUDIT_REASON]])
        try:
            self.handlers.audit.append(entry)
        except Exception:  # the refusal stands; the failure is in the node's log
            log.exception("could not audit a refused %s call from %s", rpc, caller)

    def is_named(self, caller: str) -> bool:
        """Whether the policy names `caller` as a recipient: only such callers may take the node's reserved slots."""
        recipients = self.handlers.runtime.policy.recipients
        return caller in recipients or "*" in recipients

    @contextmanager
    def _refused(self, rpc: str, context: grpc.ServicerContext) -> Iterator[None]:
        """Audit what is refused inside this block: the handler never sees such a call."""
        try:
            yield
        except FederationError as error:
            self.audit_refusal(peer_name(context), rpc, error.public)
            raise

    def _admitted_stream(
        self, rpc: str, requests: Iterator[Any], context: grpc.ServicerContext
    ) -> tuple[str, Any, RunContext, TaskSpec, NamedArrays]:
        """Read the header, let the handlers admit it, and only then read (and allocate) the tensors."""
        with self._refused(rpc, context):
            caller = self._caller(context)
            header = _read_header(requests)
            run, task = serde.context_from_pb(header.context), serde.task_from_pb(header.task)
            announced = serde.tensor_specs(header.tensors)
        self.handlers.admit_tensors(caller, rpc, run, task, announced)  # audits its own refusals
        with self._refused(rpc, context):
            arrays = _read_chunks(requests, header)
        return caller, header, run, task, arrays

    def _caller(self, context: grpc.ServicerContext) -> str:
        """The caller's certificate identity; a revoked certificate is UNAUTHENTICATED."""
        peers = self.handlers.peers
        return caller_identity(context, refusal=peers.caller_refusal if peers is not None else None)

    def _call(self, rpc: str, context: grpc.ServicerContext, request: Any) -> tuple[str, RunContext]:
        """The caller and the run context, refused and audited here if unusable."""
        with self._refused(rpc, context):
            return self._caller(context), serde.context_from_pb(request.context)

    def _task_call(self, rpc: str, context: grpc.ServicerContext, request: Any) -> tuple[str, RunContext, TaskSpec]:
        """The caller, the run context and the task, refused and audited here if unusable."""
        with self._refused(rpc, context):
            return self._caller(context), serde.context_from_pb(request.context), serde.task_from_pb(request.task)

    def Describe(self, request: pb.DescribeRequest, context: grpc.ServicerContext) -> pb.DescribeReply:
        caller, run = self._call("Describe", context, request)
        return serde.description_to_pb(self.handlers.describe(caller, run))

    def Propose(self, request: pb.ProposeRequest, context: grpc.ServicerContext) -> pb.ProposeReply:
        caller, run, task = self._task_call("Propose", context, request)
        with self._refused("Propose", context):
            release = _release(request.release)
        answer = self.handlers.propose(caller, run, task, cohort_size=request.cohort_size, release=release)
        return serde.answer_to_pb(answer)

    def Stats(self, request: pb.StatsRequest, context: grpc.ServicerContext) -> pb.StatsReply:
        caller, run, task = self._task_call("Stats", context, request)
        return serde.stats_to_pb(self.handlers.stats(caller, run, task))

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
        scores = self.handlers.evaluate(caller, run, task, arrays)
        return scores_to_pb(scores)

    def Personalise(
        self, request_iterator: Iterator[pb.PersonaliseRequest], context: grpc.ServicerContext
    ) -> pb.PersonaliseReply:
        caller, header, run, task, arrays = self._admitted_stream("Personalise", request_iterator, context)
        methods, criterion = serde.methods_from_pb(header.methods), serde.criterion_from_pb(header.criterion)
        done = personalise_here(self.handlers, caller, run, task, arrays, methods, criterion)
        return pb.PersonaliseReply(metrics=scores_to_pb(done.scores), method=done.choice.method, choice=done.choice_json())

    def TrainLocal(self, request: pb.TrainLocalRequest, context: grpc.ServicerContext) -> Iterator[pb.TrainLocalReply]:
        caller, run, task = self._task_call("TrainLocal", context, request)
        for round_, scores, n in self.handlers.train_local(caller, run, task):
            yield pb.TrainLocalReply(round=round_, metrics=scores_to_pb(scores), num_examples=n)

    def AdvertiseKeys(self, request: pb.AdvertiseKeysRequest, context: grpc.ServicerContext) -> pb.AdvertiseKeysReply:
        caller, run, task = self._task_call("AdvertiseKeys", context, request)
        with self._refused("AdvertiseKeys", context):
            parameters = serde_secagg.parameters_from_pb(request.parameters)
        return serde_secagg.advert_to_pb(self.handlers.secure.advertise_keys(caller, run, task, parameters))

    def ShareKeys(self, request: pb.ShareKeysRequest, context: grpc.ServicerContext) -> pb.ShareKeysReply:
        caller, run = self._call("ShareKeys", context, request)
        with self._refused("ShareKeys", context):
            adverts = serde_secagg.peers_from_pb(request.peers)
        return pb.ShareKeysReply(shares=serde_secagg.shares_to_pb(self.handlers.secure.share_keys(caller, run, adverts)))

    def MaskedUpdate(
        self, request_iterator: Iterator[pb.MaskedUpdateRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.MaskedUpdateReply]:
        caller, header, run, task, arrays = self._admitted_stream("MaskedUpdate", request_iterator, context)
        with self._refused("MaskedUpdate", context):
            shares = serde_secagg.shares_from_pb(header.shares)
        masked = self.handlers.secure.masked_update(caller, run, task, shares, arrays)
        result = [("masked", masked)]
        yield pb.MaskedUpdateReply(result=pb.MaskedResult(tensors=tensor_header(result)))
        for chunk in iter_chunks(result):
            yield pb.MaskedUpdateReply(chunk=chunk)

    def ConfirmSurvivors(self, request: pb.ConfirmSurvivorsRequest, context: grpc.ServicerContext) -> pb.ConfirmSurvivorsReply:
        caller, run = self._call("ConfirmSurvivors", context, request)
        with self._refused("ConfirmSurvivors", context):
            survivors = serde_secagg.survivors_from_pb(request.survivors)
        return pb.ConfirmSurvivorsReply(signature=self.handlers.secure.confirm_survivors(caller, run, survivors))

    def Unmask(self, request: pb.UnmaskRequest, context: grpc.ServicerContext) -> pb.UnmaskReply:
        caller, run = self._call("Unmask", context, request)
        with self._refused("Unmask", context):
            signatures = serde_secagg.signatures_from_pb(request.signatures)
        revealed = self.handlers.secure.unmask(caller, run, signatures)
        return pb.UnmaskReply(shares=[pb.RevealedShare(owner=o, kind=k, share=s) for o, k, s in revealed])

    def Export(self, request: pb.ExportRequest, context: grpc.ServicerContext) -> Iterator[pb.ExportReply]:
        caller, run, task = self._task_call("Export", context, request)
        yield from _arrow_replies(self.handlers.export(caller, run, task))

    def ExportKeyed(self, request: pb.ExportKeyedRequest, context: grpc.ServicerContext) -> Iterator[pb.ExportReply]:
        caller, run = self._call("ExportKeyed", context, request)
        with self._refused("ExportKeyed", context):
            columns = bounded_names(list(request.columns), "columns", count=MAX_COLUMNS)
        yield from _arrow_replies(self.handlers.keyed_export.export(caller, run, columns))

    # -- private set intersection -------------------------------------------
    def _sealed_call(self, rpc: str, context: grpc.ServicerContext, request: Any) -> tuple[str, RunContext, str, bytes]:
        caller, run = self._call(rpc, context, request)
        with self._refused(rpc, context):
            party, sealed = serde_psi.sealed_from_pb(request.message)
        return caller, run, party, sealed

    def PsiJoin(self, request: pb.PsiJoinRequest, context: grpc.ServicerContext) -> pb.PsiAdvert:
        caller, run = self._call("PsiJoin", context, request)
        with self._refused("PsiJoin", context):
            terms = serde_psi.terms_from_pb(request.terms, run.run_id, run.purpose)
        return serde_psi.advert_to_pb(self.handlers.psi.join(caller, run, terms))

    def PsiAdmit(self, request: pb.PsiAdmitRequest, context: grpc.ServicerContext) -> pb.PsiAdmitReply:
        caller, run = self._call("PsiAdmit", context, request)
        with self._refused("PsiAdmit", context):
            adverts = serde_psi.adverts_from_pb(request.adverts)
        return pb.PsiAdmitReply(queries=serde_psi.sealed_to_pb(self.handlers.psi.admit(caller, run, adverts)))

    def PsiRespond(self, request: pb.PsiSealedRequest, context: grpc.ServicerContext) -> pb.PsiSealedReply:
        caller, run, receiver, query = self._sealed_call("PsiRespond", context, request)
        response = self.handlers.psi.respond(caller, run, query)
        return pb.PsiSealedReply(message=pb.PsiSealed(party=receiver, sealed=response))

    def PsiCombine(self, request: pb.PsiSealedRequest, context: grpc.ServicerContext) -> pb.PsiCombineReply:
        caller, run, sender, response = self._sealed_call("PsiCombine", context, request)
        self.handlers.psi.combine(caller, run, sender, response)
        return pb.PsiCombineReply()

    def PsiFinish(self, request: pb.PsiFinishRequest, context: grpc.ServicerContext) -> pb.PsiFinishReply:
        caller, run = self._call("PsiFinish", context, request)
        deliveries, count = self.handlers.psi.finish(caller, run)
        return pb.PsiFinishReply(deliveries=serde_psi.sealed_to_pb(deliveries), count=count)

    def PsiDeliver(self, request: pb.PsiSealedRequest, context: grpc.ServicerContext) -> pb.PsiDeliverReply:
        caller, run, _, delivery = self._sealed_call("PsiDeliver", context, request)
        return pb.PsiDeliverReply(told=self.handlers.psi.deliver(caller, run, delivery))

    def PsiStream(self, request: pb.PsiStreamRequest, context: grpc.ServicerContext) -> Iterator[pb.PsiChunk]:
        caller, run = self._call("PsiStream", context, request)
        with self._refused("PsiStream", context):
            step = serde_psi.step_from_pb(request.step)
        for index, total, sealed in self.handlers.psi.stream(caller, run, step):
            yield pb.PsiChunk(index=index, total=total, sealed=sealed)

    def PsiFeed(self, request_iterator: Iterator[pb.PsiFeedRequest], context: grpc.ServicerContext) -> pb.PsiDeliverReply:
        first = next(request_iterator, None)
        with self._refused("PsiFeed", context):
            if first is None:
                raise InvalidRequest("a PSI feed carries at least one chunk")
        caller, run = self._call("PsiFeed", context, first)
        with self._refused("PsiFeed", context):
            step = serde_psi.step_from_pb(first.step)

        def chunks() -> Iterator[tuple[int, int, bytes]]:
            yield serde_psi.chunk_from_pb(first.chunk)
            for message in request_iterator:
                if message.context.run_id != run.run_id or message.step != step:
                    raise InvalidRequest("every message of a PSI feed belongs to its first message's run and step")
                yield serde_psi.chunk_from_pb(message.chunk)

        return pb.PsiDeliverReply(told=self.handlers.psi.feed(caller, run, step, chunks()))

    # -- vertical training ----------------------------------------------------
    def VerticalJoin(self, request: pb.VerticalJoinRequest, context: grpc.ServicerContext) -> pb.VerticalAdvert:
        caller, run = self._call("VerticalJoin", context, request)
        with self._refused("VerticalJoin", context):
            terms = serde_vertical.terms_from_pb(request.terms, run.run_id, run.purpose)
        return serde_vertical.advert_to_pb(self.handlers.vertical.join(caller, run, terms))

    def VerticalAdmit(self, request: pb.VerticalAdmitRequest, context: grpc.ServicerContext) -> pb.VerticalExchangeReply:
        caller, run = self._call("VerticalAdmit", context, request)
        with self._refused("VerticalAdmit", context):
            adverts = serde_vertical.adverts_from_pb(request.adverts)
        return _exchange_reply(self.handlers.vertical.admit(caller, run, adverts))

    def VerticalExchange(self, request: pb.VerticalExchangeRequest, context: grpc.ServicerContext) -> pb.VerticalExchangeReply:
        caller, run = self._call("VerticalExchange", context, request)
        with self._refused("VerticalExchange", context):
            pieces = serde_vertical.pieces_from_pb(request.letters)
        return _exchange_reply(self.handlers.vertical.exchange(caller, run, pieces, advance=request.advance))


def _arrow_replies(table: pa.Table) -> Iterator[pb.ExportReply]:
    """A table as an Arrow IPC stream in chunks; the first reply carries the row count."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data = memoryview(sink.getvalue())
    for index, start in enumerate(range(0, max(len(data), 1), CHUNK_BYTES)):
        yield pb.ExportReply(chunk=bytes(data[start : start + CHUNK_BYTES]), rows=table.num_rows if index == 0 else 0)


def _exchange_reply(reply: VerticalReply) -> pb.VerticalExchangeReply:
    letters = serde_vertical.pieces_to_pb(reply.letters)
    return pb.VerticalExchangeReply(letters=letters, more=reply.more, done=reply.done, outcome=reply.outcome)
