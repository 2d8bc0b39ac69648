"""Deadlines, idle timeouts and bounds on calls in flight, for a node's gRPC server.

gRPC's sync server gives every call a worker thread for its whole life and
never ends a call on its own, so a certificate holder that opens streams and
goes quiet would soon hold every worker, health checks included. Here every
call has a deadline; a call that waits on its peer (for a request message, or
for the peer to take a reply) longer than the idle timeout is cancelled by a
watchdog thread, which is what frees a worker blocked inside gRPC; and calls
in flight are bounded per caller and in total, below the worker count, so a
refusal always finds a worker. Callers the node's policy does not name share
fewer slots than the total, so certificate holders who are no recipient
cannot crowd out the coordinator. Health checks have a pool and bounds of their own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import grpc

from federation.errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")

SPARE_WORKERS = 2  # workers beyond `max_calls`: always free to refuse a call at once
TICK_SECONDS = 0.25  # how often the watchdog looks; timeouts are this precise
ENDED_EARLY = "the call ended before its requests were read (cancelled by the caller, or a message over the size limit)"


@dataclass(frozen=True)
class ServerLimits:
    """What one node's server allows; the defaults are generous for an honest coordinator."""

    unary_deadline: float = 60.0  # Describe, Propose, Stats and the unary secure-aggregation phases
    stream_deadline: float = 1800.0  # Fit, Evaluate, MaskedUpdate, TrainLocal, Export, health Watch
    idle_timeout: float = 30.0  # waiting on the peer: no request message, or a reply it does not take
    per_caller: int = 4  # calls in flight per certificate common name
    max_calls: int = 12  # calls in flight in total; the worker pool has SPARE_WORKERS more
    reserved: int = 4  # of those, slots that only callers named in the node's policy may take
    health_deadline: float = 5.0  # a health check is one tiny message each way
    health_per_caller: int = 1
    health_workers: int = 4  # a pool of their own, so a busy node still answers them

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be positive, got {value}"
            for name, value in vars(self).items()
            if not (isinstance(value, (int, float)) and value > 0)
        ]
        if self.per_caller > self.max_calls:
            problems.append(f"per_caller ({self.per_caller}) cannot exceed max_calls ({self.max_calls})")
        if self.reserved >= self.max_calls:
            problems.append(f"reserved ({self.reserved}) must be below max_calls ({self.max_calls})")
        if self.health_per_caller >= self.health_workers:
            problems.append("health_per_caller must be below health_workers, so one caller cannot hold them all")
        if problems:
            raise ConfigError("server limits", problems)

    @property
    def workers(self) -> int:
        return self.max_calls + SPARE_WORKERS


class Slots:
    """Calls in flight per caller and in total; taking a slot never blocks, so a flood is refused at once.

    `reserved` of the `total` slots are kept for callers taken with `named=True`
    (the recipients of the node's policy).
    """

    def __init__(self, per_caller: int, total: int, *, reserved: int = 0) -> None:
        self.per_caller, self.total, self.reserved = per_caller, total, reserved
        self._by_caller: Counter[str] = Counter()
        self._in_flight = 0
        self._unnamed = 0
        self._lock = threading.Lock()

    def take(self, caller: str, *, named: bool = True) -> str | None:
        """Take a slot for `caller`; if none is free, say why (sent to the caller and audited)."""
        with self._lock:
            if self._by_caller[caller] >= self.per_caller:
                return f"too many calls in flight: at most {self.per_caller} per caller"
            if self._in_flight >= self.total:
                return f"too many calls in flight: this node serves at most {self.total} at once"
            if not named and self._unnamed >= self.total - self.reserved:
                shared = self.total - self.reserved
                return f"too many calls in flight: at most {shared} at once from callers the policy does not name"
            self._by_caller[caller] += 1
            self._in_flight += 1
            self._unnamed += not named
            return None

    def give_back(self, caller: str, *, named: bool = True) -> None:
        with self._lock:
            self._in_flight -= 1
            self._unnamed -= not named
            self._by_caller[caller] -= 1
            if not self._by_caller[caller]:
                del self._by_caller[caller]  # the counter stays as small as the set of callers in flight

    @property
    def in_flight(self) -> int:
        return self._in_flight


class CallEnded(Exception):
    """The call ended before its handler read all of it: by its deadline, its idle timeout, or its caller."""

    def __init__(self, reason: str, *, expired: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired


class Watch:
    """One call under the watchdog: its deadline, and since when it waits on its peer."""

    def __init__(self, context: grpc.ServicerContext, *, deadline: float, idle: float) -> None:
        self.context = context
        self.deadline_seconds, self.idle = deadline, idle
        self.deadline = time.monotonic() + deadline
        self.waiting_since: float | None = None
        self.expired: str | None = None  # why the watchdog ended the call, once it has

    def overdue(self, now: float) -> str | None:
        if now >= self.deadline:
            return f"the call passed the node's deadline of {self.deadline_seconds:g} s"
        since = self.waiting_since
        if since is not None and now - since >= self.idle:
            return f"the peer sent nothing and took nothing for {self.idle:g} s"
        return None

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Mark a wait on the peer (a read, or a reply being taken): the idle timeout runs meanwhile."""
        self.waiting_since = time.monotonic()
        try:
            yield
        finally:
            self.waiting_since = None

    def requests(self, requests: Iterator[T]) -> Iterator[T]:
        """The request stream read under the idle timeout; a call that ended meanwhile raises `CallEnded`.

        A cancelled call may end gRPC's iterator as if the stream were complete,
        so its end is trusted only while the call is still active.
        """
        while True:
            try:
                with self.waiting():
                    request = next(requests)
            except StopIteration:
                self._raise_if_ended()
                return
            except grpc.RpcError:
                self._raise_if_ended()
                raise CallEnded(ENDED_EARLY, expired=False) from None
            yield request

    def _raise_if_ended(self) -> None:
        if self.expired is not None:
            raise CallEnded(self.expired, expired=True)
        if not self.context.is_active():
            raise CallEnded(ENDED_EARLY, expired=False)


class Watchdog:
    """One thread that cancels the calls past their deadline or idle too long; it runs only while calls are watched."""

    def __init__(self) -> None:
        self._calls: set[Watch] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watching(self, context: grpc.ServicerContext, *, deadline: float, idle: float) -> Iterator[Watch]:
        watch = Watch(context, deadline=deadline, idle=idle)
        with self._lock:
            self._calls.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="call-watchdog", daemon=True)
                self._thread.start()
        try:
            yield watch
        finally:
            with self._lock:
                self._calls.discard(watch)

    def _run(self) -> None:
        while True:
            time.sleep(TICK_SECONDS)
            now = time.monotonic()
            with self._lock:
                if not self._calls:
                    self._thread = None
                    return
                overdue = [(watch, why) for watch in self._calls if (why := watch.overdue(now)) is not None]
                for watch, _ in overdue:
                    self._calls.discard(watch)
            for watch, why in overdue:
                watch.expired = why  # before cancelling: the handler thread reads it when gRPC lets go
                log.info("ending a call from %s: %s", watch.context.peer(), why)
                watch.context.cancel()
