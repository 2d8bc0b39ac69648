"""Two-party PSI as message steps: a receiver learns which of its keys the sender holds (or only how many).

    receiver                                   sender
    A = H(X)^a, in the receiver's order  --->
                                         <---  A^b (in A's order, or sorted: count only)
                                         <---  H(Y)^b, sorted (reveals nothing of Y's order)
    (H(Y)^b)^a  compared with A^b

The sender learns |X|; the receiver learns |Y| and the intersection (or its
size). Sorting the double-blinded values before they leave breaks the link
to the receiver's order, which is how a sender's policy grants the count
only. Messages are packed 32-byte points (`blind.pack`), so the steps can
run over any transport; nothing here touches the network or a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from federation.errors import InvalidRequest
from federation.psi.blind import Blinder, hash_to_points, pack, unpack


@dataclass(frozen=True)
class Response:
    """The sender's answer: the receiver's points blinded again, and its own points blinded once."""

    double_blinded: bytes
    sender_points: bytes
    in_order: bool  # False: sorted, so the receiver learns only the count


class Receiver:
    """The party that learns the intersection: its keys stay in its own order, its scalar never leaves."""

    def __init__(self, keys: Sequence[str], *, run_id: str, rule: str) -> None:
        if len(set(keys)) != len(keys):
            raise InvalidRequest("the receiver's keys repeat; prepare them with psi.uscc.prepare_keys first")
        self.keys = list(keys)
        self._blinder = Blinder()
        self._first = pack(self._blinder.blind(hash_to_points(self.keys, run_id=run_id, rule=rule)))

    def first(self) -> bytes:
        return self._first

    def finish(self, response: Response) -> tuple[list[str] | None, int]:
        """(the shared keys, or None when the sender granted only the count; the count)."""
        mine = unpack(response.double_blinded, what="the receiver's points blinded by the sender")
        if len(mine) != len(self.keys):
            raise InvalidRequest(f"the sender returned {len(mine)} points for the receiver's {len(self.keys)}")
        theirs = unpack(response.sender_points, what="the sender's points")
        if len(set(theirs)) != len(theirs):
            raise InvalidRequest("the sender's points repeat: its keys were not distinct")
        shared = set(self._blinder.blind(theirs))
        count = sum(p in shared for p in mine)
        if not response.in_order:
            return None, count
        return [k for k, p in zip(self.keys, mine, strict=True) if p in shared], count


class Sender:
    """The party that answers: it learns only how many keys the receiver has."""

    def __init__(self, keys: Sequence[str], *, run_id: str, rule: str) -> None:
        if len(set(keys)) != len(keys):
            raise InvalidRequest("the sender's keys repeat; prepare them with psi.uscc.prepare_keys first")
        self._blinder = Blinder()
        self._points = sorted(self._blinder.blind(hash_to_points(list(keys), run_id=run_id, rule=rule)))

    def respond(self, first: bytes, *, reveal_membership: bool) -> Response:
        theirs = unpack(first, what="the receiver's points")
        again = self._blinder.blind(theirs)
        if not reveal_membership:
            again = sorted(again)
        return Response(pack(again), pack(self._points), in_order=reveal_membership)
