"""Server interceptor: every failure of a handler becomes a clear gRPC status.

Project errors map to their status code with the public message; anything
else becomes INTERNAL with a reference id while the traceback stays in the
node's log. Requests that do not parse become INVALID_ARGUMENT instead of
gRPC's generic INTERNAL, so a peer learns what it did wrong and the node
keeps serving.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from federation.errors import FederationError, InvalidRequest
from federation.transport.status import STATUS_BY_CODE, trailing_metadata

log = logging.getLogger(__name__)


class _Malformed:
    """Stands in for a request that failed to parse."""


MALFORMED = _Malformed()


def _safe_deserializer(parse: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if parse is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except (DecodeError, ValueError, TypeError):
            return MALFORMED

    return deserialize


def _check(request: Any) -> Any:
    if request is MALFORMED:
        raise InvalidRequest("the request could not be parsed as the expected message")
    return request


def _checked_stream(requests: Iterator[Any]) -> Iterator[Any]:
    for request in requests:
        yield _check(request)


def _abort(context: grpc.ServicerContext, error: Exception, method: str) -> None:
    if isinstance(error, FederationError):
        log.info("%s refused: %s %s", method, error.public, error.detail)
        context.set_trailing_metadata(trailing_metadata(error))
        context.abort(STATUS_BY_CODE[error.code], error.public)
    ref = uuid.uuid4().hex[:12]
    log.exception("%s failed (ref %s)", method, ref, exc_info=error)
    context.abort(grpc.StatusCode.INTERNAL, f"internal error (ref {ref})")


class ErrorMappingInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Wraps every method handler of the server it is installed on."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        deserializer = _safe_deserializer(handler.request_deserializer)
        serializer = handler.response_serializer

        if handler.unary_unary is not None:
            inner_uu = handler.unary_unary

            def unary_unary(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    return inner_uu(_check(request), context)
                except Exception as error:  # noqa: BLE001 - mapped to a status, never swallowed
                    _abort(context, error, method)

            return grpc.unary_unary_rpc_method_handler(unary_unary, deserializer, serializer)
        if handler.unary_stream is not None:
            inner_us = handler.unary_stream

            def unary_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                try:
                    yield from inner_us(_check(request), context)
                except Exception as error:  # noqa: BLE001
                    _abort(context, error, method)

            return grpc.unary_stream_rpc_method_handler(unary_stream, deserializer, serializer)
        if handler.stream_unary is not None:
            inner_su = handler.stream_unary

            def stream_unary(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
                try:
                    return inner_su(_checked_stream(requests), context)
                except Exception as error:  # noqa: BLE001
                    _abort(context, error, method)

            return grpc.stream_unary_rpc_method_handler(stream_unary, deserializer, serializer)
        inner_ss = handler.stream_stream

        def stream_stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                yield from inner_ss(_checked_stream(requests), context)
            except Exception as error:  # noqa: BLE001
                _abort(context, error, method)

        return grpc.stream_stream_rpc_method_handler(stream_stream, deserializer, serializer)
