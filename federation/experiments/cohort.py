"""Who takes part in a comparison: clients of every node, who answers, and the public bound on their weights."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from federation.coordinator.client import NodeClient
from federation.coordinator.negotiate import parallel
from federation.errors import FederationError
from federation.experiments.config import Experiment
from federation.replies import NodeDescription
from federation.task import RunContext
from federation.transport.receipts import ReceiptBook
from federation.transport.tls import Identity

Connector = Callable[[Experiment, Path], list[NodeClient]]  # clients of every node, their receipts kept in the run directory


def connect(
    experiment: Experiment, addresses: dict[str, str], *, timeout: float = 600.0, run_dir: Path | None = None
) -> list[NodeClient]:
    """Clients of every node; with `run_dir` every node's audit receipts are kept in it."""
    identity = Identity.in_directory(experiment.pki_dir, experiment.coordinator)
    book = ReceiptBook(run_dir) if run_dir is not None else None
    return [NodeClient(node_id, address, identity, timeout=timeout, receipts=book) for node_id, address in addresses.items()]


def describe_all(
    clients: Sequence[NodeClient], purpose: str, run_id: str
) -> tuple[list[NodeClient], dict[str, str], list[NodeDescription]]:
    """Who answers: reachable clients, unreachable ones with the reason, their descriptions."""
    answers = parallel(clients, lambda c: c.describe(RunContext(run_id, purpose)))
    reachable, unreachable, descriptions = [], {}, []
    for client in clients:
        answer = answers[client.node_id]
        if isinstance(answer, FederationError):
            unreachable[client.node_id] = answer.public
        else:
            reachable.append(client)
            descriptions.append(answer)
    return reachable, unreachable, descriptions


def weight_cap(descriptions: Sequence[NodeDescription]) -> float:
    """A public bound on any node's example count, from the rounded counts nodes describe.

    Rounding hides exact counts, so the cap leaves 10 % headroom and is a power of
    two; a node above it would be weighted as if it had exactly the cap.
    """
    largest = max((d.approx_records for d in descriptions), default=1)
    return float(2 ** math.ceil(math.log2(max(1.1 * largest, 2))))
