"""Who has answered yet: a report, node by node, while the coordinator waits on a fan-out.

A round waits on its slowest node; with hundreds of nodes a user wants to
see how many have answered. `parallel` (every phase of every round) and the
Flower grid's training calls report `(answered, total)` to the reporter set
for the current thread's run, if any (`compare(on_wait=...)`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from threading import Lock

Reporter = Callable[[int, int], None]  # (nodes answered, nodes asked) in the current fan-out

_reporter: ContextVar[Reporter | None] = ContextVar("waiting_reporter", default=None)


@contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Report every fan-out started from this thread inside the block to `reporter` (the fan-outs capture it)."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)


def current() -> Reporter | None:
    return _reporter.get()


class Tally:
    """Counts the answers of one fan-out of `total` nodes and reports each; safe across the fan-out's threads."""

    def __init__(self, total: int, reporter: Reporter | None) -> None:
        self.total, self.answered, self._lock = total, 0, Lock()
        self._reporter = reporter if total > 0 else None  # nobody to wait for, nothing to show
        if self._reporter is not None:
            self._reporter(0, total)

    def answer(self) -> None:
        if self._reporter is None:
            return
        with self._lock:
            self.answered += 1
            answered = self.answered
        self._reporter(answered, self.total)
