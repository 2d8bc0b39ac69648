"""Server interceptor: admission, deadlines, and the one mapping of failures to gRPC statuses.

Project errors map to their status code with the public message; anything
else becomes INTERNAL with a reference id while the traceback stays in the
node's log. Requests that do not parse become INVALID_ARGUMENT instead of
gRPC's generic INTERNAL, so a peer learns what it did wrong and the node
keeps serving.

Every method is served as a request stream, a unary one too: gRPC's own
unary path waits for the request message before any code of ours runs, and
without a timeout, so a peer that sends headers and then nothing would hold
a worker for ever. Before anything is read a call takes a slot (`limits.Slots`,
per caller and in total, some kept for the callers `named` in the node's
policy) or is refused with RESOURCE_EXHAUSTED, and its reads
and replies run under the watchdog (`limits.Watchdog`). Methods named in
`light` (the health check) run on a thread pool of their own; `deadlines`
overrides the deadline of a method (a health Watch, which waits inside the
health service where no idle timeout can see it).

Each call leaves at most one audit entry: refusals decided here (no slot, a
unary request that does not parse, a call ended by its deadline, idle timeout
or caller) go to `audit`; the servicer audits what it refuses before a
handler runs (including a stream message that does not parse); handlers
audit the rest.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from federation.errors import FederationError, InvalidRequest
from federation.transport.limits import CallEnded, ServerLimits, Slots, Watch, Watchdog
from federation.transport.receipts import receipt_metadata
from federation.transport.status import STATUS_BY_CODE, trailing_metadata

log = logging.getLogger(__name__)

NODE_SERVICE = "federation.proto.v1.NodeService"
MAX_DETAILS = 1000  # characters of a status message; the rest of a long error stays in the node's log
MAX_REASONS = 8  # policy reasons sent as trailing metadata

RefusalAudit = Callable[[str, str, str], None]  # (caller, rpc, reason): one audit entry
Named = Callable[[str], bool]  # is this caller named in the node's policy (may it take a reserved slot)?


class _Malformed:
    """Stands in for a request that failed to parse."""


MALFORMED = _Malformed()


class _Unreadable(InvalidRequest):
    """A unary method's request that is missing or does not parse: refused, and audited, here."""


def _safe_deserializer(parse: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if parse is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except (DecodeError, ValueError, TypeError, RecursionError):
            return MALFORMED

    return deserialize


def _checked(requests: Iterator[Any]) -> Iterator[Any]:
    for request in requests:
        if request is MALFORMED:
            raise InvalidRequest("a message of the stream could not be parsed as the expected message")
        yield request


def peer_name(context: grpc.ServicerContext) -> str:
    """The common name of the caller's certificate, for counting and audit only; "" if there is not exactly one."""
    names = context.auth_context().get("x509_common_name") or []
    if len(names) != 1:
        return ""
    name = names[0].decode(errors="replace") if isinstance(names[0], bytes) else str(names[0])
    return name[:200]


def rpc_name(method: str) -> str:
    """`Fit` for the node's own methods, `Health/Check` for others: how audit entries name a call."""
    service, _, name = method.lstrip("/").rpartition("/")
    return name if service == NODE_SERVICE else f"{service.rsplit('.', 1)[-1]}/{name}"


def abort_call(context: grpc.ServicerContext, error: Exception, method: str, receipt: tuple[tuple[str, str], ...] = ()) -> None:
    """Set the status for `error` (with the audit receipt of the refusal); `context.abort` raises, so this never returns.

    The one mapping of failures to statuses, also for calls that arrive as Flower messages (`flower.virtual_node`).
    """
    if isinstance(error, FederationError):
        log.info("%s refused: %s %s", method, error.public[:MAX_DETAILS], error.detail[:MAX_DETAILS])
        metadata = trailing_metadata(error)
        details = tuple((key, value[:MAX_DETAILS]) for key, value in metadata[: 1 + MAX_REASONS])
        context.set_trailing_metadata(details + receipt)
        context.abort(STATUS_BY_CODE[error.code], error.public[:MAX_DETAILS])
    ref = uuid.uuid4().hex[:12]
    log.exception("%s failed (ref %s)", method, ref, exc_info=error)
    context.abort(grpc.StatusCode.INTERNAL, f"internal error (ref {ref})")


@dataclass(frozen=True)
class _Method:
    path: str
    rpc: str
    deadline: float
    light: bool  # runs on its own pool, with its own slots
    unary_request: bool


class ErrorMappingInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Wraps every method handler of the server it is installed on."""

    def __init__(
        self,
        limits: ServerLimits | None = None,
        *,
        audit: RefusalAudit | None = None,
        named: Named | None = None,
        light: Mapping[str, futures.ThreadPoolExecutor] | None = None,
        deadlines: Mapping[str, float] | None = None,
        receipt: Callable[[], str | None] | None = None,
    ) -> None:
        """`receipt` gives the signed hash of the node's latest audit entry, which every node reply carries."""
        self.limits = limits or ServerLimits()
        self._receipt = receipt
        self._audit = audit
        self._named = named or (lambda caller: True)
        self._light = dict(light or {})
        self._deadlines = dict(deadlines or {})
        self.slots = Slots(self.limits.per_caller, self.limits.max_calls, reserved=self.limits.reserved)
        self.light_slots = Slots(self.limits.health_per_caller, self.limits.health_workers)
        self._watchdog = Watchdog()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        path = handler_call_details.method
        pool = self._light.get(path)
        limits = self.limits
        streams = handler.request_streaming or handler.response_streaming
        deadline = limits.health_deadline if pool is not None else limits.stream_deadline if streams else limits.unary_deadline
        deadline = self._deadlines.get(path, deadline)
        method = _Method(path, rpc_name(path), deadline, pool is not None, not handler.request_streaming)
        deserializer = _safe_deserializer(handler.request_deserializer)
        serializer = handler.response_serializer
        if handler.response_streaming:
            streaming = self._streaming_reply(method, handler.stream_stream or handler.unary_stream)
            if pool is not None:
                streaming.experimental_thread_pool = pool  # type: ignore[attr-defined]
            return grpc.stream_stream_rpc_method_handler(streaming, deserializer, serializer)
        single = self._single_reply(method, handler.stream_unary or handler.unary_unary)
        if pool is not None:
            single.experimental_thread_pool = pool  # type: ignore[attr-defined]
        return grpc.stream_unary_rpc_method_handler(single, deserializer, serializer)

    def _single_reply(self, method: _Method, inner: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def behavior(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            with self._guarded(method, context) as watch:
                reply = inner(self._request(method, watch, requests), context)
                self._attach_receipt(method, context)
                return reply

        return behavior

    def _streaming_reply(
        self, method: _Method, inner: Callable[[Any, grpc.ServicerContext], Iterator[Any]]
    ) -> Callable[..., Iterator[Any]]:
        def behavior(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            with self._guarded(method, context) as watch:
                for reply in inner(self._request(method, watch, requests), context):
                    with watch.waiting():  # gRPC sends while we are suspended here; a peer that takes nothing times out
                        yield reply
                self._attach_receipt(method, context)

        return behavior

    @staticmethod
    def _request(method: _Method, watch: Watch, requests: Iterator[Any]) -> Any:
        """The one request of a unary method, or the checked stream of a streaming one, read under the watchdog."""
        stream = watch.requests(requests)
        if not method.unary_request:
            return _checked(stream)
        request = next(stream, None)
        if request is None:
            raise _Unreadable("the call carried no request message")
        if request is MALFORMED:
            raise _Unreadable("the request could not be parsed as the expected message")
        return request

    @contextmanager
    def _guarded(self, method: _Method, context: grpc.ServicerContext) -> Iterator[Watch]:
        """A slot, a watch and the error mapping around one call; frees the slot however the call ends."""
        caller = peer_name(context)
        slots = self.light_slots if method.light else self.slots
        named = self._named(caller)
        refusal = slots.take(caller, named=named)
        if refusal is not None:
            self._refused(caller, method, refusal)
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal)
        try:
            with self._watchdog.watching(context, deadline=method.deadline, idle=self.limits.idle_timeout) as watch:
                try:
                    yield watch
                except CallEnded as ended:
                    self._refused(caller, method, ended.reason)
                    context.abort(grpc.StatusCode.DEADLINE_EXCEEDED if ended.expired else grpc.StatusCode.CANCELLED, ended.reason)
                except _Unreadable as error:
                    self._refused(caller, method, error.public)
                    abort_call(context, error, method.path)
                except Exception as error:  # noqa: BLE001 - mapped to a status, never swallowed
                    abort_call(context, error, method.path, self._receipt_metadata(method))
                if watch.expired is not None:  # the handler ran past the deadline: the reply was not sent
                    log.info("%s from %s: %s", method.rpc, caller, watch.expired)
        finally:
            slots.give_back(caller, named=named)

    def _receipt_metadata(self, method: _Method) -> tuple[tuple[str, str], ...]:
        if self._receipt is None or method.light:
            return ()
        return receipt_metadata(self._receipt())

    def _attach_receipt(self, method: _Method, context: grpc.ServicerContext) -> None:
        metadata = self._receipt_metadata(method)
        if metadata:
            context.set_trailing_metadata(metadata)

    def _refused(self, caller: str, method: _Method, reason: str) -> None:
        log.info("%s from %s refused: %s", method.rpc, caller, reason)
        if self._audit is not None:
            self._audit(caller, method.rpc, reason)
