"""How a party's protocol runs as a generator that a router drives: named arrays out, named arrays in.

A party's program is written straight through, as if the other parties
were beside it: `send` files an array for a peer, `yield from receive`
waits for one. Every time the program waits, the router (the coordinator
over gRPC, or `local.run` in one process) takes what it filed and
delivers it, and comes back when new mail has arrived. The program
never knows how its messages travel, so the networked run and the
in-process reference run the same code, value for value.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any

import numpy as np

from federation.errors import InvalidRequest, ProtocolOrderError

Letters = dict[str, dict[str, np.ndarray]]  # peer -> name -> array
Program = Generator[None, None, Any]


class Mailbox:
    """One party's mail: what it filed to send, and what arrived and was not yet read."""

    def __init__(self, name: str, peers: frozenset[str]) -> None:
        self.name, self.peers = name, peers
        self.outgoing: Letters = {}
        self._arrived: dict[tuple[str, str], np.ndarray] = {}
        self._seen: set[tuple[str, str]] = set()

    def send(self, peer: str, name: str, value: np.ndarray) -> None:
        if peer == self.name or peer not in self.peers:
            raise ProtocolOrderError(f"{self.name} cannot send {name!r} to {peer!r}")
        self.outgoing.setdefault(peer, {})[name] = np.ascontiguousarray(value)

    def receive(self, peer: str, name: str, shape: tuple[int, ...], dtype: type = np.uint64) -> Generator[None, None, np.ndarray]:
        """Wait for `name` from `peer`, and check it is the array the protocol expects."""
        while (peer, name) not in self._arrived:
            yield
        value = self._arrived.pop((peer, name))
        if value.shape != shape or value.dtype != np.dtype(dtype):
            raise InvalidRequest(f"{peer}'s {name!r} is {value.dtype}{list(value.shape)}, not {np.dtype(dtype)}{list(shape)}")
        return value

    def deliver(self, letters: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """File what arrived; a name is accepted once per sender, so nothing can be replayed into a later step."""
        for peer, items in letters.items():
            if peer not in self.peers:
                raise InvalidRequest(f"{self.name} takes no mail from {peer[:64]!r}")
            for name, value in items.items():
                if (peer, name) in self._seen:
                    raise InvalidRequest(f"{peer}'s {name[:64]!r} arrived twice")
                self._seen.add((peer, name))
                self._arrived[(peer, name)] = value

    def take(self) -> Letters:
        out, self.outgoing = self.outgoing, {}
        return out

    @property
    def unread(self) -> int:
        return len(self._arrived)


class Runner:
    """One party's program and mailbox: `step(mail)` runs it until it waits or ends, and returns what it filed."""

    def __init__(self, mailbox: Mailbox, program: Callable[[Mailbox], Program]) -> None:
        self.mailbox = mailbox
        self._program = program(mailbox)
        self.done = False
        self.result: Any = None

    def step(self, letters: Mapping[str, Mapping[str, np.ndarray]]) -> Letters:
        if self.done:
            if letters:
                raise ProtocolOrderError(f"{self.mailbox.name}'s part of the run is over; it reads no more mail")
            return {}
        self.mailbox.deliver(letters)
        try:
            next(self._program)
        except StopIteration as finished:
            self.done, self.result = True, finished.value
        return self.mailbox.take()
