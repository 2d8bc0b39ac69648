"""Before a run: propose the task to every node, keep those that accept.

The run goes ahead only with the accepting nodes and only if their number
meets every participant's minimum cohort; refusals are kept, with reasons,
for the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from federation.coordinator import waiting
from federation.coordinator.client import NodeClient
from federation.errors import FederationError, InvalidRequest
from federation.replies import FeatureStats
from federation.task import FeatureScaling, PrivacySpec, RunContext, TaskSpec

T = TypeVar("T")


@dataclass
class Negotiation:
    accepted: list[NodeClient] = field(default_factory=list)
    refusals: dict[str, list[str]] = field(default_factory=dict)
    min_cohort: int = 1
    max_release: dict[str, str] = field(default_factory=dict)
    privacy: PrivacySpec | None = None  # the tightest any accepting node demands

    @property
    def can_start(self) -> bool:
        return bool(self.accepted) and len(self.accepted) >= self.min_cohort


def parallel(clients: Sequence[NodeClient], call: Callable[[NodeClient], T]) -> dict[str, T | FederationError]:
    """Run `call` on every node at once; a node's failure is returned, not raised; answers are reported as they come."""
    tally = waiting.Tally(len(clients), waiting.current())

    def guarded(client: NodeClient) -> T | FederationError:
        try:
            return call(client)
        except FederationError as error:
            return error
        finally:
            tally.answer()

    with ThreadPoolExecutor(max_workers=max(1, len(clients))) as pool:
        results = list(pool.map(guarded, clients))
    return {c.node_id: r for c, r in zip(clients, results, strict=True)}


def negotiate(clients: Sequence[NodeClient], context: RunContext, task: TaskSpec, *, release: str) -> Negotiation:
    answers = parallel(clients, lambda c: c.propose(context, task, cohort_size=len(clients), release=release))
    result = Negotiation()
    for client in clients:
        answer = answers[client.node_id]
        if isinstance(answer, FederationError):
            reasons = getattr(answer, "reasons", None) or [answer.public]
            result.refusals[client.node_id] = list(reasons)
        elif not answer.accepted:
            result.refusals[client.node_id] = list(answer.reasons)
        else:
            result.accepted.append(client)
            result.min_cohort = max(result.min_cohort, answer.min_cohort)
            result.max_release[client.node_id] = answer.max_release
            if answer.noise_multiplier is not None and answer.clip is not None and answer.dp_level != "record":
                current = result.privacy
                result.privacy = PrivacySpec(
                    max(answer.noise_multiplier, current.noise_multiplier if current else 0.0),
                    min(answer.clip, current.clip if current else answer.clip),
                )
    return result


def combine_stats(stats: Sequence[FeatureStats]) -> FeatureScaling:
    """Global mean and standard deviation from per-node sums (no rows needed)."""
    if not stats:
        raise InvalidRequest("no node returned statistics")
    columns = stats[0].columns
    if any(s.columns != columns for s in stats):
        raise InvalidRequest("nodes encode the features into different columns")
    count = np.sum([s.count for s in stats], axis=0).astype(np.float64)
    sums = np.sum([s.sum for s in stats], axis=0)
    squares = np.sum([s.sum_squares for s in stats], axis=0)
    safe = np.maximum(count, 1.0)
    mean = sums / safe
    variance = np.maximum(squares / safe - mean**2, 0.0)
    std = np.sqrt(variance)
    std = np.where(std > 1e-12, std, 1.0)
    return FeatureScaling(columns, tuple(float(m) for m in mean), tuple(float(s) for s in std))


def combine_histograms(stats: Sequence[FeatureStats]) -> dict[str, tuple[tuple[float, ...], tuple[int, ...]]]:
    """Global histograms: per-node counts on the schema's fixed edges, added up."""
    result: dict[str, tuple[tuple[float, ...], tuple[int, ...]]] = {}
    for s in stats:
        for column, (edges, counts) in s.histograms.items():
            if column not in result:
                result[column] = (edges, counts)
            elif result[column][0] != edges:
                raise InvalidRequest(f"nodes binned {column!r} on different edges")
            else:
                result[column] = (edges, tuple(a + b for a, b in zip(result[column][1], counts, strict=True)))
    return result


def histogram_quantile(edges: Sequence[float], counts: Sequence[int], q: float) -> float:
    """A quantile from binned counts, interpolating linearly inside the bin."""
    total = sum(counts)
    if total == 0:
        return float("nan")
    target, seen = q * total, 0
    for low, high, count in zip(edges[:-1], edges[1:], counts, strict=True):
        if count and seen + count >= target:
            return float(low + (high - low) * (target - seen) / count)
        seen += count
    return float(edges[-1])
