"""The helper's correlated randomness in a networked run, drawn from pairwise streams so little of it travels.

Compute party 0 expands every one of its shares from the stream it shares
with the helper; compute party 1 expands the uniform parts of its shares
(a, b of a triple, r of a truncation pair, b of a product step) from its
own stream with the helper, and receives only the corrections that make the
two add up: c1 = a b - c0, the high bits and top bit of r, A^T b - [A^T b]_0
and, once per run, its share A - A0 of each feature party's pad. Each
correction is uniform to party 1 (it is offset by a stream of party 0's that
party 1 cannot expand), so it says nothing, and the helper sees no data at
all: it learns only the shapes, which the terms make public anyway.

Labels name each draw (step, kind, batch), so the helper and the compute
parties agree on every value without a counter that could drift.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from federation.errors import InvalidRequest
from federation.vertical import matvec
from federation.vertical.beaver import TripleShare, helper_triple
from federation.vertical.ring import FRACTION, RING, stream
from federation.vertical.truncate import TruncationShare, helper_pair

Corrections = dict[str, np.ndarray]  # label -> what party 1 is sent
Request = tuple[str, str, tuple[int, ...]]  # ("triple" | "truncation" | "step", label, shape)


def corrections(requests: list[Request], widths: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """The name and shape of every correction party 1 is sent for `requests`."""
    out: dict[str, tuple[int, ...]] = {}
    for kind, label, shape in requests:
        if kind == "triple":
            out[label + "/c"] = shape
        elif kind == "truncation":
            out[label + "/rh"] = out[label + "/rt"] = shape
        else:
            out.update({f"{label}/atb/{owner}": (width,) for owner, width in widths.items()})
    return out


def _draw(key: bytes, label: str, shape: tuple[int, ...]) -> np.ndarray:
    return stream(key, b"dealer/" + label.encode(), shape)


class Source:
    """One compute party's side of the helper's randomness: its streams, and (party 1) the corrections it was sent."""

    def __init__(self, party: int, key: bytes) -> None:
        self.party, self.key = party, key
        self.corrections: dict[str, np.ndarray] = {}

    def receive(self, corrections: Mapping[str, np.ndarray]) -> None:
        self.corrections.update(corrections)

    def _given(self, label: str, shape: tuple[int, ...]) -> np.ndarray:
        if self.party == 0:
            return _draw(self.key, label, shape)
        value = self.corrections.pop(label, None)
        if value is None or value.shape != shape or value.dtype != RING:
            raise InvalidRequest(f"the helper sent no correction {label!r} of shape {shape}")
        return value

    def triple(self, label: str, shape: tuple[int, ...]) -> TripleShare:
        return TripleShare(
            _draw(self.key, label + "/a", shape), _draw(self.key, label + "/b", shape), self._given(label + "/c", shape)
        )

    def truncation(self, label: str, shape: tuple[int, ...]) -> TruncationShare:
        return TruncationShare(
            _draw(self.key, label + "/r", shape), self._given(label + "/rh", shape), self._given(label + "/rt", shape)
        )

    def product_step(self, label: str, rows: int, width: int, owner: str) -> matvec.StepShare:
        """This party's share of the step's b (one per step, shared by every owner) and of A_owner^T b."""
        return matvec.StepShare(_draw(self.key, label + "/b", (rows,)), self._given(f"{label}/atb/{owner}", (width,)))

    def pad(self, owner: str, shape: tuple[int, ...]) -> np.ndarray:
        """This party's share of `owner`'s pad A (one per run)."""
        return self._given(f"pad/{owner}", shape)


class Dealer:
    """The helper's side: it expands both compute parties' streams and returns the corrections party 1 needs."""

    def __init__(self, key0: bytes, key1: bytes) -> None:
        self.key0, self.key1 = key0, key1

    def deal(self, requests: list[Request], pads: Mapping[str, np.ndarray]) -> Corrections:
        """Party 1's corrections for `requests` (`pads`: every owner's pad A, for the product steps)."""
        out: Corrections = {}
        for kind, label, shape in requests:
            if kind == "triple":
                out.update(self.triple(label, shape))
            elif kind == "truncation":
                out.update(self.truncation(label, shape))
            else:
                out.update(self.product_step(label, shape[0], pads))
        return out

    def triple(self, label: str, shape: tuple[int, ...]) -> Corrections:
        def d0(name: str) -> np.ndarray:
            return _draw(self.key0, label + name, shape)

        def d1(name: str) -> np.ndarray:
            return _draw(self.key1, label + name, shape)

        a1, b1 = d1("/a"), d1("/b")
        _, second = helper_triple(d0("/a") + a1, d0("/b") + b1, TripleShare(d0("/a"), d0("/b"), d0("/c")))
        return {label + "/c": second.c}

    def truncation(self, label: str, shape: tuple[int, ...]) -> Corrections:
        r0, r1 = _draw(self.key0, label + "/r", shape), _draw(self.key1, label + "/r", shape)
        first = (r0, _draw(self.key0, label + "/rh", shape), _draw(self.key0, label + "/rt", shape))
        _, second = helper_pair(r0 + r1, FRACTION, first)
        return {label + "/rh": second.r_hat, label + "/rt": second.r_top}

    def product_step(self, label: str, rows: int, pads: Mapping[str, np.ndarray]) -> Corrections:
        b = _draw(self.key0, label + "/b", (rows,)) + _draw(self.key1, label + "/b", (rows,))
        out = {}
        for owner, pad in pads.items():
            first = matvec.StepShare(np.zeros(rows, dtype=RING), _draw(self.key0, f"{label}/atb/{owner}", (pad.shape[1],)))
            _, second = matvec.helper_step(pad, b, first)
            out[f"{label}/atb/{owner}"] = second.a_t_b
        return out

    def pad(self, owner: str, pad: np.ndarray) -> Corrections:
        return {f"pad/{owner}": np.asarray(pad - _draw(self.key0, f"pad/{owner}", pad.shape), dtype=RING)}
