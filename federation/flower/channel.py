"""The coordinator's side on Flower's engines: a gRPC channel whose calls travel as Flower messages.

`NodeClient` (and so every run, comparison and sweep) talks to a node through
a `grpc.Channel`; `MessageChannel` is one whose calls go through a Flower
`Grid` (the Simulation Engine's, or a SuperLink's under `flwr run`) to the
virtual node's ClientApp, and whose failures come back as the same gRPC
statuses, so `error_from_rpc` raises the same project errors as on our own
nodes. One `MessageRouter` per grid pushes every call and collects every
reply with a single poller, however many calls are waiting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import grpc
from flwr.app import Message, RecordDict
from flwr.serverapp import Grid

from federation.flower.wire import MESSAGE_TYPE, WHOAMI, Reply, call_content, method_name
from federation.transport.receipts import ReceiptBook, receipt_from_metadata

log = logging.getLogger(__name__)
POLL_SECONDS = 0.01
WINDOW = 32  # calls in the grid at once


class MessageRouter:
    """Sends calls to virtual nodes through a Flower grid; one thread collects the replies."""

    def __init__(self, grid: Grid, *, poll: float = POLL_SECONDS, window: int = WINDOW) -> None:
        """At most `window` calls are in the grid at once: Flower's in-memory link state scans every stored
        message for every node it serves, so a thousand messages pushed at once cost a million checks per
        delivery pass, and the engine's own loop, not the nodes, becomes the bottleneck."""
        self._grid = grid
        self._poll = poll
        self._window = threading.BoundedSemaphore(window)
        self._lock = threading.Lock()
        self._waiting: dict[str, Future[Message]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._collect, name="flower-replies", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def node_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._grid.get_node_ids())

    def call(self, node: int, content: RecordDict, *, timeout: float) -> Reply:
        """Send one message to Flower node `node` and wait for its reply, as a wire `Reply`."""
        future: Future[Message] = Future()
        message = Message(content, node, MESSAGE_TYPE, ttl=max(timeout, 1.0))
        with self._window:
            with self._lock:
                ids = list(self._grid.push_messages([message]))
                if not ids:
                    return Reply(status="UNAVAILABLE", details=f"Flower node {node} is not part of this run")
                self._waiting[ids[0]] = future
            try:
                answer = future.result(timeout=timeout)
            except FutureTimeout:
                with self._lock:
                    self._waiting.pop(ids[0], None)
                return Reply(status="DEADLINE_EXCEEDED", details=f"no reply within {timeout:.0f} s")
        if answer.has_error():
            error = answer.error
            return Reply(status="UNAVAILABLE", details=f"Flower's runtime failed the call (code {error.code}): {error.reason}")
        return Reply.read(answer.content)

    def _collect(self) -> None:
        while not self._stop.wait(self._poll):
            with self._lock:
                if not self._waiting:
                    continue
                replies = list(self._grid.pull_messages(list(self._waiting)))
                for reply in replies:
                    future = self._waiting.pop(reply.metadata.reply_to_message_id, None)
                    if future is not None:
                        future.set_result(reply)


class BridgedRpcError(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """A failed call, with the status, details and trailing metadata the virtual node sent."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.details)
        self._reply = reply

    def code(self) -> grpc.StatusCode:
        return getattr(grpc.StatusCode, self._reply.status, grpc.StatusCode.UNKNOWN)

    def details(self) -> str:
        return self._reply.details

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._reply.metadata

    def initial_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False


class MessageChannel(grpc.Channel):  # type: ignore[misc]
    """A channel to one virtual node; `receipts` keeps the audit receipt of every reply, as on gRPC."""

    def __init__(self, router: MessageRouter, node: int, node_id: str, *, receipts: ReceiptBook | None = None) -> None:
        self._router = router
        self._node = node
        self._node_id = node_id
        self._receipts = receipts

    def _invoke(
        self, path: str, requests: list[Any], serialise: Callable[[Any], bytes] | None, timeout: float | None
    ) -> list[bytes]:
        encode = serialise or (lambda message: message.SerializeToString())
        reply = self._router.call(
            self._node, call_content(method_name(path), [encode(r) for r in requests]), timeout=timeout or 600.0
        )
        receipt = receipt_from_metadata(reply.metadata)
        if receipt is not None and self._receipts is not None:
            self._receipts.keep(self._node_id, receipt)
        if reply.status != "OK":
            raise BridgedRpcError(reply)
        return reply.replies

    def unary_unary(self, method: str, request_serializer: Any = None, response_deserializer: Any = None, **_: Any) -> Any:
        def call(request: Any, timeout: float | None = None, **__: Any) -> Any:
            return response_deserializer(_one(method, self._invoke(method, [request], request_serializer, timeout)))

        return call

    def unary_stream(self, method: str, request_serializer: Any = None, response_deserializer: Any = None, **_: Any) -> Any:
        def call(request: Any, timeout: float | None = None, **__: Any) -> Iterator[Any]:
            return iter([response_deserializer(r) for r in self._invoke(method, [request], request_serializer, timeout)])

        return call

    def stream_unary(self, method: str, request_serializer: Any = None, response_deserializer: Any = None, **_: Any) -> Any:
        def call(requests: Iterator[Any], timeout: float | None = None, **__: Any) -> Any:
            return response_deserializer(_one(method, self._invoke(method, list(requests), request_serializer, timeout)))

        return call

    def stream_stream(self, method: str, request_serializer: Any = None, response_deserializer: Any = None, **_: Any) -> Any:
        def call(requests: Iterator[Any], timeout: float | None = None, **__: Any) -> Iterator[Any]:
            return iter([response_deserializer(r) for r in self._invoke(method, list(requests), request_serializer, timeout)])

        return call

    def subscribe(self, callback: Callable[..., None], try_to_connect: bool = False) -> None:
        callback(grpc.ChannelConnectivity.READY)

    def unsubscribe(self, callback: Callable[..., None]) -> None:
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> MessageChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _one(method: str, replies: list[bytes]) -> bytes:
    """The reply of a call with a single reply; a node that sent another count sent nonsense."""
    if len(replies) != 1:
        details = f"{method_name(method)} answered with {len(replies)} replies, not 1"
        raise BridgedRpcError(Reply(status="INTERNAL", details=details))
    return replies[0]


def whoami(router: MessageRouter, node: int, *, timeout: float) -> Reply:
    """Which party Flower node `node` serves (its node id in `replies[0]`)."""
    return router.call(node, call_content(WHOAMI, []), timeout=timeout)
