"""One secure-aggregation round over the node network: five phases, dropouts tolerated.

Each phase calls every remaining node in parallel; a node that fails or times
out in a phase is a dropout from then on. The coordinator only ever holds
public keys, sealed shares it cannot open, masked vectors and, at the end,
the sum over the survivors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from federation.coordinator.client import NodeClient
from federation.coordinator.negotiate import parallel
from federation.errors import CohortRejected, FederationError, RoundAborted
from federation.models.training import NamedArrays, flatten, unflatten
from federation.secagg.config import RoundParameters
from federation.secagg.server import SecAggServer
from federation.task import RunContext, TaskSpec

T = TypeVar("T")


@dataclass
class SecureOutcome:
    """The averaged update, or why the round aborted, and who dropped where."""

    arrays: NamedArrays | None
    total_weight: float
    survivors: list[str]
    dropouts: dict[str, list[str]] = field(default_factory=dict)
    errors: list[dict[str, object]] = field(default_factory=list)
    aborted: str = ""


def secure_sum(
    clients: Sequence[NodeClient],
    context: RunContext,
    task: TaskSpec,
    parameters: RoundParameters,
    payload_arrays: NamedArrays,
    *,
    before_phase: Callable[[str], None] | None = None,
) -> tuple[np.ndarray | None, SecureOutcome]:
    """The four phases; returns the decoded float sum over the survivors (or None) and the outcome."""
    by_index = {parameters.participants.index(c.node_id): c for c in clients}
    server = SecAggServer(parameters.config(context.run_id, context.round, caller=clients[0].caller if clients else ""))
    outcome = SecureOutcome(arrays=None, total_weight=0.0, survivors=[])

    def phase(rpc: str, indices: Sequence[int], call: Callable[[int, NodeClient], T]) -> dict[int, T]:
        if before_phase is not None:
            before_phase(rpc)
        results = parallel([by_index[i] for i in indices], lambda c: call(parameters.participants.index(c.node_id), c))
        answered: dict[int, T] = {}
        rejected = []
        for node_id, result in results.items():
            if isinstance(result, FederationError):
                outcome.errors.append({"round": context.round, "node": node_id, "rpc": rpc, "error": result.public})
                if isinstance(result, CohortRejected):
                    rejected.append(f"{node_id} rejected the cohort at {rpc}: {result.public}")
            else:
                answered[parameters.participants.index(node_id)] = result
        if rejected:  # an honest coordinator stops at once: some node saw a participant or set it does not accept
            raise CohortRejected("; ".join(rejected))
        return answered

    try:
        keys = phase("AdvertiseKeys", sorted(by_index), lambda i, c: c.advertise_keys(context, task, parameters))
        peers = server.collect_keys(keys)
        sealed = phase("ShareKeys", sorted(peers), lambda i, c: c.share_keys(context, peers))
        routed = server.route_shares(sealed)
        masked = phase("MaskedUpdate", sorted(routed), lambda i, c: c.masked_update(context, task, routed[i], payload_arrays))
        survivors = server.collect_masked(masked)
        signed = phase("ConfirmSurvivors", sorted(survivors), lambda i, c: c.confirm_survivors(context, survivors))
        signatures = server.collect_confirmations(signed)
        revealed = phase("Unmask", sorted(signatures), lambda i, c: c.unmask(context, signatures))
        total = server.finish(revealed)
    except RoundAborted as error:
        outcome.aborted = error.public
        return None, _dropouts(outcome, server, parameters)
    outcome.survivors = sorted(parameters.participants[i] for i in survivors)
    return server.config.quantizer.decode(total).astype(np.float64), _dropouts(outcome, server, parameters)


def run_secure_round(
    clients: Sequence[NodeClient],
    context: RunContext,
    task: TaskSpec,
    global_arrays: NamedArrays,
    parameters: RoundParameters,
    *,
    before_phase: Callable[[str], None] | None = None,
) -> SecureOutcome:
    """Average the nodes' weighted updates so that only their sum is ever seen.

    `before_phase` is called with each phase's RPC name before it starts (used
    by tests to make a node vanish at a chosen moment).
    """
    decoded, outcome = secure_sum(clients, context, task, parameters, global_arrays, before_phase=before_phase)
    if decoded is None:
        return outcome
    weight = float(decoded[-1])
    if weight <= 0:
        outcome.aborted, outcome.survivors = "the survivors' total weight is zero", []
        return outcome
    outcome.arrays = unflatten(flatten(global_arrays) + decoded[:-1] / weight, global_arrays)
    outcome.total_weight = weight * parameters.max_weight
    return outcome


def _dropouts(outcome: SecureOutcome, server: SecAggServer, parameters: RoundParameters) -> SecureOutcome:
    outcome.dropouts = {stage: [parameters.participants[i] for i in lost] for stage, lost in server.dropouts.items()}
    return outcome
