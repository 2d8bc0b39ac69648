"""NodeClient: the coordinator's view of one node, in the project's own values.

Failed calls come back as the project's exceptions (`PolicyDenied`,
`NodeUnavailable`, ...), never as `grpc.RpcError`. The client also counts
what left the node: bytes per RPC and raw records exported.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import numpy as np
import pyarrow as pa

from federation.errors import InvalidRequest
from federation.models.evaluation import Scores
from federation.models.training import NamedArrays
from federation.proto.v1 import node_pb2 as pb
from federation.proto.v1 import node_pb2_grpc
from federation.psi.session import Advert as PsiAdvert
from federation.psi.session import Terms
from federation.replies import FeatureStats, FitOutcome, NodeDescription, ProposalAnswer
from federation.secagg.cohort import Advert
from federation.secagg.config import RoundParameters
from federation.task import ParamValue, RunContext, TaskSpec
from federation.transport import serde, serde_psi, serde_secagg, serde_vertical
from federation.transport.channel import secure_channel
from federation.transport.receipts import ReceiptBook, ReceiptCollector
from federation.transport.serde_scores import scores_from_pb
from federation.transport.status import error_from_rpc
from federation.transport.streaming import TensorAssembler, iter_chunks, tensor_header
from federation.transport.tls import Identity, certificate_name
from federation.vertical.session import Advert as VerticalAdvert
from federation.vertical.session import Piece
from federation.vertical.session import Terms as VerticalTerms

T = TypeVar("T")
DEFAULT_TIMEOUT = 600.0


@dataclass
class Traffic:
    """What left one node, as seen by the coordinator."""

    bytes_by_rpc: Counter[str] = field(default_factory=Counter)
    raw_records: int = 0

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_by_rpc.values())


class NodeClient:
    def __init__(
        self,
        node_id: str,
        address: str,
        identity: Identity,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        receipts: ReceiptBook | None = None,
        channel: grpc.Channel | None = None,
    ) -> None:
        """`receipts` keeps the signed audit receipt of every reply, the evidence `audit verify --receipts` checks.

        `channel` replaces the mutual-TLS channel to `address`: on Flower's
        engines it carries the calls as Flower messages and keeps the receipts itself.
        """
        self.node_id = node_id
        self.address = address
        self.timeout = timeout
        self.traffic = Traffic()
        self.caller = certificate_name(identity.cert.read_bytes())  # the identity nodes see: binds secure sessions
        self._channel = channel if channel is not None else secure_channel(address, identity, expected_node=node_id)
        channel = self._channel
        if receipts is not None:
            channel = grpc.intercept_channel(channel, ReceiptCollector(lambda receipt: receipts.keep(node_id, receipt)))
        self._stub = node_pb2_grpc.NodeServiceStub(channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except grpc.RpcError as error:
            raise error_from_rpc(error, peer=f"node {self.node_id} at {self.address}") from None

    def _count(self, rpc: str, message: Any) -> None:
        self.traffic.bytes_by_rpc[rpc] += message.ByteSize()

    def _incoming(self, rpc: str, replies: Iterator[Any]) -> tuple[Any, NamedArrays]:
        """A result header, then tensor chunks: returns (result, arrays), counting every byte."""
        first = next(replies, None)
        if first is None or first.WhichOneof("item") != "result":
            raise InvalidRequest(f"node {self.node_id} answered {rpc} without a result header")
        self._count(rpc, first)
        assembler = TensorAssembler(first.result.tensors)
        for reply in replies:
            assembler.feed(reply.chunk)
            self._count(rpc, reply)
        return first.result, assembler.finish()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the channel connects, or raise NodeUnavailable."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            from federation.errors import NodeUnavailable

            raise NodeUnavailable(f"node {self.node_id} at {self.address} did not answer within {timeout:.0f}s") from None

    def describe(self, context: RunContext) -> NodeDescription:
        reply = self._call(
            lambda: self._stub.Describe(pb.DescribeRequest(context=serde.context_to_pb(context)), timeout=self.timeout)
        )
        self._count("Describe", reply)
        return serde.description_from_pb(reply)

    def propose(self, context: RunContext, task: TaskSpec, *, cohort_size: int, release: str) -> ProposalAnswer:
        request = pb.ProposeRequest(
            context=serde.context_to_pb(context), task=serde.task_to_pb(task), cohort_size=cohort_size, release=release
        )
        reply = self._call(lambda: self._stub.Propose(request, timeout=self.timeout))
        self._count("Propose", reply)
        return serde.answer_from_pb(reply)

    def stats(self, context: RunContext, task: TaskSpec) -> FeatureStats:
        request = pb.StatsRequest(context=serde.context_to_pb(context), task=serde.task_to_pb(task))
        reply = self._call(lambda: self._stub.Stats(request, timeout=self.timeout))
        self._count("Stats", reply)
        return serde.stats_from_pb(reply)

    def fit(self, context: RunContext, task: TaskSpec, arrays: NamedArrays) -> FitOutcome:
        header = pb.FitHeader(context=serde.context_to_pb(context), task=serde.task_to_pb(task), tensors=tensor_header(arrays))

        def run() -> FitOutcome:
            replies = self._stub.Fit(_outgoing(pb.FitRequest, header, arrays), timeout=self.timeout)
            result, received = self._incoming("Fit", replies)
            return FitOutcome(received, num_examples=result.num_examples, train_loss=result.train_loss)

        return self._call(run)

    def evaluate(self, context: RunContext, task: TaskSpec, arrays: NamedArrays) -> Scores:
        header = pb.EvaluateHeader(
            context=serde.context_to_pb(context), task=serde.task_to_pb(task), tensors=tensor_header(arrays)
        )

        reply = self._call(lambda: self._stub.Evaluate(_outgoing(pb.EvaluateRequest, header, arrays), timeout=self.timeout))
        self._count("Evaluate", reply)
        return scores_from_pb(reply)

    def personalise(
        self,
        context: RunContext,
        task: TaskSpec,
        arrays: NamedArrays,
        methods: dict[str, dict[str, ParamValue]],
        criterion: str = "loss",
    ) -> tuple[Scores, dict[str, Any]]:
        """The node's personalised model, scored on its test rows, and its choice (method, hyperparameters, why)."""
        header = pb.PersonaliseHeader(
            context=serde.context_to_pb(context),
            task=serde.task_to_pb(task),
            tensors=tensor_header(arrays),
            methods=serde.methods_to_pb(methods),
            criterion=criterion,
        )
        reply = self._call(lambda: self._stub.Personalise(_outgoing(pb.PersonaliseRequest, header, arrays), timeout=self.timeout))
        self._count("Personalise", reply)
        try:
            choice = json.loads(reply.choice) if len(reply.choice) < 65_536 else {}
        except ValueError:
            choice = {}
        return scores_from_pb(reply.metrics), {"method": reply.method[:64], **(choice if isinstance(choice, dict) else {})}

    def train_local(self, context: RunContext, task: TaskSpec) -> Iterator[tuple[int, Scores, int]]:
        request = pb.TrainLocalRequest(context=serde.context_to_pb(context), task=serde.task_to_pb(task))

        def run() -> list[pb.TrainLocalReply]:
            return list(self._stub.TrainLocal(request, timeout=self.timeout))

        for reply in self._call(run):
            self._count("TrainLocal", reply)
            yield reply.round, scores_from_pb(reply.metrics), reply.num_examples

    def export(self, context: RunContext, task: TaskSpec) -> pa.Table:
        request = pb.ExportRequest(context=serde.context_to_pb(context), task=serde.task_to_pb(task))
        return self._table("Export", lambda: self._stub.Export(request, timeout=self.timeout))

    def export_keyed(self, context: RunContext, columns: Sequence[str]) -> pa.Table:
        """The node's columns of every firm it knows, with the firm's key (a vertical study's central pool)."""
        request = pb.ExportKeyedRequest(context=serde.context_to_pb(context), columns=list(columns))
        return self._table("ExportKeyed", lambda: self._stub.ExportKeyed(request, timeout=self.timeout))

    def _table(self, rpc: str, call: Callable[[], Iterator[Any]]) -> pa.Table:
        def run() -> pa.Table:
            buffer = bytearray()
            for reply in call():
                self._count(rpc, reply)
                buffer.extend(reply.chunk)
            try:
                return pa.ipc.open_stream(pa.py_buffer(bytes(buffer))).read_all()
            except pa.ArrowInvalid as error:
                raise InvalidRequest(f"node {self.node_id} exported rows that are not an Arrow stream: {error}") from error

        table = self._call(run)
        self.traffic.raw_records += table.num_rows
        return table

    # -- secure aggregation -------------------------------------------------
    def advertise_keys(self, context: RunContext, task: TaskSpec, parameters: RoundParameters) -> Advert:
        request = pb.AdvertiseKeysRequest(
            context=serde.context_to_pb(context),
            task=serde.task_to_pb(task),
            parameters=serde_secagg.parameters_to_pb(parameters),
        )
        reply = self._call(lambda: self._stub.AdvertiseKeys(request, timeout=self.timeout))
        self._count("AdvertiseKeys", reply)
        return serde_secagg.advert_from_pb(reply)

    def share_keys(self, context: RunContext, adverts: dict[int, Advert]) -> dict[int, bytes]:
        request = pb.ShareKeysRequest(context=serde.context_to_pb(context), peers=serde_secagg.peers_to_pb(adverts))
        reply = self._call(lambda: self._stub.ShareKeys(request, timeout=self.timeout))
        self._count("ShareKeys", reply)
        return serde_secagg.shares_from_pb(reply.shares)

    def masked_update(self, context: RunContext, task: TaskSpec, shares: dict[int, bytes], arrays: NamedArrays) -> np.ndarray:
        header = pb.MaskedUpdateHeader(
            context=serde.context_to_pb(context),
            task=serde.task_to_pb(task),
            shares=serde_secagg.shares_to_pb(shares),
            tensors=tensor_header(arrays),
        )

        def run() -> np.ndarray:
            replies = self._stub.MaskedUpdate(_outgoing(pb.MaskedUpdateRequest, header, arrays), timeout=self.timeout)
            _, arrays_out = self._incoming("MaskedUpdate", replies)
            if len(arrays_out) != 1 or arrays_out[0][1].dtype != np.uint32 or arrays_out[0][1].ndim != 1:
                raise InvalidRequest(f"node {self.node_id} sent a masked update that is not one uint32 vector")
            return arrays_out[0][1]

        return self._call(run)

    def confirm_survivors(self, context: RunContext, survivors: frozenset[int]) -> bytes:
        request = pb.ConfirmSurvivorsRequest(context=serde.context_to_pb(context), survivors=sorted(survivors))
        reply = self._call(lambda: self._stub.ConfirmSurvivors(request, timeout=self.timeout))
        self._count("ConfirmSurvivors", reply)
        return bytes(reply.signature)

    def unmask(self, context: RunContext, signatures: dict[int, bytes]) -> list[tuple[int, str, bytes]]:
        request = pb.UnmaskRequest(context=serde.context_to_pb(context), signatures=serde_secagg.signatures_to_pb(signatures))
        reply = self._call(lambda: self._stub.Unmask(request, timeout=self.timeout))
        self._count("Unmask", reply)
        return [(s.owner, s.kind, s.share) for s in reply.shares]

    # -- private set intersection -------------------------------------------
    def psi_join(self, context: RunContext, terms: Terms) -> PsiAdvert:
        request = pb.PsiJoinRequest(context=serde.context_to_pb(context), terms=serde_psi.terms_to_pb(terms))
        reply = self._call(lambda: self._stub.PsiJoin(request, timeout=self.timeout))
        self._count("PsiJoin", reply)
        return serde_psi.advert_from_pb(reply)

    def psi_admit(self, context: RunContext, adverts: dict[str, PsiAdvert]) -> dict[str, bytes]:
        messages = [serde_psi.advert_to_pb(a) for _, a in sorted(adverts.items())]
        request = pb.PsiAdmitRequest(context=serde.context_to_pb(context), adverts=messages)
        reply = self._call(lambda: self._stub.PsiAdmit(request, timeout=self.timeout))
        self._count("PsiAdmit", reply)
        return serde_psi.sealed_map_from_pb(reply.queries)

    def _sealed(self, rpc: str, context: RunContext, party: str, sealed: bytes) -> Any:
        request = pb.PsiSealedRequest(context=serde.context_to_pb(context), message=pb.PsiSealed(party=party, sealed=sealed))
        reply = self._call(lambda: getattr(self._stub, rpc)(request, timeout=self.timeout))
        self._count(rpc, reply)
        return reply

    def psi_respond(self, context: RunContext, receiver: str, query: bytes) -> bytes:
        return serde_psi.sealed_from_pb(self._sealed("PsiRespond", context, receiver, query).message)[1]

    def psi_combine(self, context: RunContext, sender: str, response: bytes) -> None:
        self._sealed("PsiCombine", context, sender, response)

    def psi_finish(self, context: RunContext) -> tuple[dict[str, bytes], int | None]:
        request = pb.PsiFinishRequest(context=serde.context_to_pb(context))
        reply = self._call(lambda: self._stub.PsiFinish(request, timeout=self.timeout))
        self._count("PsiFinish", reply)
        return serde_psi.sealed_map_from_pb(reply.deliveries), reply.count if reply.HasField("count") else None

    def psi_deliver(self, context: RunContext, receiver: str, delivery: bytes) -> str:
        return str(self._sealed("PsiDeliver", context, receiver, delivery).told)[:32]

    def psi_stream(self, context: RunContext, step: str) -> list[tuple[int, int, bytes]]:
        """One step's sealed chunks of a two-party run, held here until they are fed to the other party."""
        request = pb.PsiStreamRequest(context=serde.context_to_pb(context), step=step)

        def run() -> list[tuple[int, int, bytes]]:
            chunks = []
            for reply in self._stub.PsiStream(request, timeout=self.timeout):
                self._count("PsiStream", reply)
                chunks.append((int(reply.index), int(reply.total), bytes(reply.sealed)))
            return chunks

        return self._call(run)

    def psi_feed(self, context: RunContext, step: str, chunks: list[tuple[int, int, bytes]]) -> str:
        """Relay the other party's chunks of `step`; what this party was told if the step ends its run."""
        wire = serde.context_to_pb(context)
        messages = (
            pb.PsiFeedRequest(context=wire, step=step, chunk=pb.PsiChunk(index=i, total=t, sealed=s)) for i, t, s in chunks
        )
        reply = self._call(lambda: self._stub.PsiFeed(messages, timeout=self.timeout))
        self._count("PsiFeed", reply)
        return str(reply.told)[:32]

    # -- vertical training ----------------------------------------------------
    def vertical_join(self, context: RunContext, terms: VerticalTerms) -> VerticalAdvert:
        request = pb.VerticalJoinRequest(context=serde.context_to_pb(context), terms=terms.to_json())
        reply = self._call(lambda: self._stub.VerticalJoin(request, timeout=self.timeout))
        self._count("VerticalJoin", reply)
        return serde_vertical.advert_from_pb(reply)

    def vertical_admit(self, context: RunContext, adverts: dict[str, VerticalAdvert]) -> Exchanged:
        messages = [serde_vertical.advert_to_pb(a) for _, a in sorted(adverts.items())]
        request = pb.VerticalAdmitRequest(context=serde.context_to_pb(context), adverts=messages)
        return self._exchanged("VerticalAdmit", lambda: self._stub.VerticalAdmit(request, timeout=self.timeout))

    def vertical_exchange(self, context: RunContext, pieces: list[Piece], *, advance: bool) -> Exchanged:
        letters = serde_vertical.pieces_to_pb(pieces)
        request = pb.VerticalExchangeRequest(context=serde.context_to_pb(context), letters=letters, advance=advance)
        return self._exchanged("VerticalExchange", lambda: self._stub.VerticalExchange(request, timeout=self.timeout))

    def _exchanged(self, rpc: str, call: Callable[[], Any]) -> Exchanged:
        reply = self._call(call)
        self._count(rpc, reply)
        return Exchanged(serde_vertical.pieces_from_pb(reply.letters), reply.more, reply.done, str(reply.outcome))


@dataclass(frozen=True)
class Exchanged:
    """A node's reply in a vertical run: letter pieces for others, whether more wait, whether it is done, its outcome."""

    pieces: list[Piece]
    more: bool
    done: bool
    outcome: str


def _outgoing(message: Callable[..., Any], header: Any, arrays: NamedArrays) -> Iterator[Any]:
    """The header, then the arrays in bounded chunks, as one request stream."""
    yield message(header=header)
    for chunk in iter_chunks(arrays):
        yield message(chunk=chunk)
