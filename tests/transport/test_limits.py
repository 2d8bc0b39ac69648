"""federation.transport.limits: slots, the watchdog and the limits' own checks, without a network."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from federation.errors import ConfigError
from federation.transport.limits import CallEnded, ServerLimits, Slots, Watchdog


class FakeContext:
    """The parts of a servicer context the watchdog uses; `cancel` ends a blocked read as gRPC does."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()

    def is_active(self) -> bool:
        return not self.cancelled.is_set()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"


def blocking(context: FakeContext, *first: str) -> Iterator[str]:
    """A request stream that sends `first`, then nothing until cancelled, then looks complete."""
    yield from first
    context.cancelled.wait(10)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"idle_timeout": 0}, "idle_timeout must be positive"),
        ({"max_calls": -1}, "max_calls must be positive"),
        ({"per_caller": 20}, "cannot exceed max_calls"),
        ({"health_per_caller": 4}, "below health_workers"),
        ({"reserved": 12}, "must be below max_calls"),
    ],
)
def test_limits_that_would_not_bound_anything_are_refused(changes: dict[str, float], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ServerLimits(**changes)  # type: ignore[arg-type]
    assert any(problem in p for p in caught.value.problems)


def test_the_pool_keeps_spare_workers_beyond_the_calls_in_flight() -> None:
    limits = ServerLimits()
    assert limits.workers > limits.max_calls >= limits.per_caller
    assert limits.health_workers > limits.health_per_caller


def test_slots_bound_each_caller_and_the_total_and_are_given_back() -> None:
    slots = Slots(per_caller=2, total=3)
    assert slots.take("a") is None and slots.take("a") is None
    assert "per caller" in (slots.take("a") or "")
    assert slots.take("b") is None
    assert "at most 3" in (slots.take("c") or "")
    slots.give_back("a")
    assert slots.take("c") is None
    assert slots.in_flight == 3
    for name in ("a", "b", "c"):
        slots.give_back(name)
    assert slots.in_flight == 0 and slots.take("a") is None


def test_reserved_slots_are_kept_for_callers_the_policy_names() -> None:
    slots = Slots(per_caller=2, total=4, reserved=2)
    assert slots.take("stranger-1", named=False) is None and slots.take("stranger-2", named=False) is None
    assert "callers the policy does not name" in (slots.take("stranger-3", named=False) or "")
    assert slots.take("coordinator") is None and slots.take("coordinator") is None
    assert "at most 4 at once" in (slots.take("other-recipient") or "")
    slots.give_back("stranger-1", named=False)
    assert slots.take("stranger-3", named=False) is None


def test_a_read_that_waits_past_the_idle_timeout_is_cancelled_and_reported_as_expired() -> None:
    context, watchdog = FakeContext(), Watchdog()
    started = time.monotonic()
    with watchdog.watching(context, deadline=60, idle=0.5) as watch:  # type: ignore[arg-type]
        reads = watch.requests(blocking(context, "header"))
        assert next(reads) == "header"
        with pytest.raises(CallEnded) as caught:
            next(reads)  # gRPC's iterator ends as if complete once cancelled; that is not trusted
    assert caught.value.expired and "sent nothing" in caught.value.reason
    assert context.cancelled.is_set()
    assert 0.5 <= time.monotonic() - started < 2.0


def test_a_peer_that_keeps_sending_within_the_idle_timeout_is_not_cancelled() -> None:
    context, watchdog = FakeContext(), Watchdog()

    def slow() -> Iterator[int]:
        for i in range(4):
            time.sleep(0.3)
            yield i

    with watchdog.watching(context, deadline=60, idle=0.6) as watch:  # type: ignore[arg-type]
        assert list(watch.requests(slow())) == [0, 1, 2, 3]
    assert not context.cancelled.is_set()


def test_the_deadline_ends_a_call_even_while_its_handler_computes() -> None:
    context, watchdog = FakeContext(), Watchdog()
    with watchdog.watching(context, deadline=0.3, idle=60) as watch:  # type: ignore[arg-type]
        assert context.cancelled.wait(2.0)  # no read in progress: only the deadline applies
    assert watch.expired is not None and "deadline of 0.3 s" in watch.expired


def test_a_call_cancelled_by_its_caller_is_not_mistaken_for_a_complete_stream() -> None:
    context, watchdog = FakeContext(), Watchdog()
    with watchdog.watching(context, deadline=60, idle=60) as watch:  # type: ignore[arg-type]
        context.cancel()
        with pytest.raises(CallEnded) as caught:
            list(watch.requests(blocking(context)))
    assert not caught.value.expired and "cancelled" in caught.value.reason


def test_the_watchdog_thread_runs_only_while_calls_are_watched() -> None:
    watchdog = Watchdog()
    with watchdog.watching(FakeContext(), deadline=60, idle=60):  # type: ignore[arg-type]
        assert any(t.name == "call-watchdog" for t in threading.enumerate())
    time.sleep(0.6)
    assert watchdog._thread is None
