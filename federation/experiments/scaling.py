"""Global scaling from the nodes' summed statistics, before any topology runs, so all see the same inputs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from federation.coordinator.client import NodeClient
from federation.coordinator.grid import SecureSettings
from federation.coordinator.negotiate import combine_stats, negotiate, parallel
from federation.coordinator.secure_round import secure_sum
from federation.data import bounded_stats
from federation.data.schema import Schema
from federation.errors import FederationError, PolicyDenied
from federation.replies import FeatureStats
from federation.task import RunContext, TaskSpec

log = logging.getLogger(__name__)


def global_scaling(
    clients: Sequence[NodeClient],
    task: TaskSpec,
    *,
    run_id: str,
    purpose: str,
    secure: SecureSettings | None = None,
    secure_mode: str = "never",
    schema: Schema | None = None,
) -> tuple[TaskSpec, dict[str, list[str]], list[FeatureStats]]:
    """Attach global standardisation computed from the nodes' sums; also return the statistics.

    Under secure aggregation (mode "always", or "auto" when a node releases no
    more than masked updates) the statistics are summed securely like updates,
    so the coordinator never sees one node's sums; it gets one summed set.
    """
    negotiation = negotiate(clients, RunContext(run_id, purpose), task, release="stats")
    masked_only = any(level == "masked-update" for level in negotiation.max_release.values())
    wants_secure = secure_mode == "always" or (secure_mode == "auto" and masked_only)
    if wants_secure and secure is not None and schema is not None and len(negotiation.accepted) >= 2:
        summed = secure_statistics(negotiation.accepted, task, schema, run_id=run_id, purpose=purpose, settings=secure)
        if summed is not None:
            return task.with_scaling(combine_stats([summed])), dict(negotiation.refusals), [summed]
        log.warning("secure statistics aborted; no statistics were released")
        raise PolicyDenied(["the secure summation of statistics aborted below its threshold"])
    answers = parallel(negotiation.accepted, lambda c: c.stats(RunContext(run_id, purpose), task))
    stats = [a for a in answers.values() if isinstance(a, FeatureStats)]
    refusals = dict(negotiation.refusals)
    refusals.update({n: [a.public] for n, a in answers.items() if isinstance(a, FederationError)})
    if not stats:
        raise PolicyDenied([f"{n}: {'; '.join(r)}" for n, r in refusals.items()] or ["no node returned statistics"])
    return task.with_scaling(combine_stats(stats)), refusals, stats


def secure_statistics(
    clients: Sequence[NodeClient], task: TaskSpec, schema: Schema, *, run_id: str, purpose: str, settings: SecureSettings
) -> FeatureStats | None:
    """Counts, sums, sums of squares and histograms summed over the nodes by secure aggregation."""
    length = bounded_stats.vector_length(schema, task.stats_fields) + 1
    parameters = replace(settings.parameters([c.node_id for c in clients], []), vector_length=length, payload="stats")
    decoded, _ = secure_sum(clients, RunContext(run_id, purpose, 1), task, parameters, [])
    if decoded is None:
        return None
    columns, counts, sums, squares, hist = bounded_stats.from_vector(
        decoded[:-1], schema, task.stats_fields, cap=settings.max_weight
    )
    return FeatureStats(columns, counts, sums, squares, hist)
